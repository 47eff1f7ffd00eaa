"""The regwatch service (`regwatch run`): tail, receive webhooks, serve metrics, schedule.

See :mod:`regwatch.service.daemon` for the loop and :mod:`regwatch.service.status` for
the status file that `regwatch status` and the dashboard read.
"""

from regwatch.service.status import ServiceStatus, SourceStatus, default_state_dir, read_status

__all__ = ["ServiceStatus", "SourceStatus", "default_state_dir", "read_status"]
