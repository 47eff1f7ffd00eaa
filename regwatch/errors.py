"""The one error root of regwatch.

Every error that regwatch raises on purpose derives from :class:`RegwatchError`.
Only ``regwatch.cli`` turns them into exit codes.

    RegwatchError
    ├── ConfigError            bad YAML, unknown keys or values (exit 2)
    │   ├── UnknownFormat      a --format / parser name that is not registered
    │   ├── BadTime            a --since/--until value that is neither ISO-8601 nor relative
    │   └── CatalogError       a bad metric catalog (regwatch.metrics.catalog)
    ├── InputError             a path that cannot be read (exit 3)
    ├── StoreError             anything the store cannot do (exit 4)
    │   ├── StoreUnavailable   the store cannot be reached right now (retryable)
    │   └── StoreCorrupt       the store's files cannot be read back
    ├── CheckpointError        the checkpoint file cannot be read or written (exit 5)
    └── WebhookError           a webhook body that cannot be read (regwatch.sources.webhooks)
"""

from __future__ import annotations


class RegwatchError(Exception):
    """Root of every error regwatch raises on purpose."""

    exit_code = 1


class ConfigError(RegwatchError):
    """Configuration or command-line value is invalid."""

    exit_code = 2


class UnknownFormat(ConfigError):
    """A log format name that no parser is registered under."""


class BadTime(ConfigError):
    """A time value that cannot be understood."""


class InputError(RegwatchError):
    """An input path cannot be read."""

    exit_code = 3


class StoreError(RegwatchError):
    """The store failed."""

    exit_code = 4


class StoreUnavailable(StoreError):
    """The store cannot be reached right now; the operation may be retried."""


class StoreCorrupt(StoreError):
    """The store's data cannot be read back."""


class CheckpointError(RegwatchError):
    """The checkpoint cannot be loaded or committed."""

    exit_code = 5
