"""What a capacity action does when it fires: one small runner per ``kind``.

Each runner takes the action's config, the crossing it answers (:class:`Trigger`), whether
this is a dry run, and the environment (secrets are read from it by name, never stored),
and returns ``(outcome, detail, data)``. Runners never raise: a failure is an outcome.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from regwatch.capacity.assess import Assessment, threshold_label
from regwatch.config import ActionConfig

OK = "ok"
FAILED = "failed"
DRY_RUN = "dry_run"
SKIPPED = "skipped"
OUTCOMES = (OK, FAILED, DRY_RUN, SKIPPED)

HARBOR_GC_PATH = "/api/v2.0/system/gc/schedule"
_DETAIL_MAX = 500


@dataclass(frozen=True)
class Trigger:
    """The crossing an action answers: an assessment and the episode it belongs to."""

    assessment: Assessment
    episode: str
    bound: str  # which crossing triggered: "lower" or "eta"
    store: Any = None  # for retention_report
    now: datetime | None = None

    def fields(self) -> dict[str, str]:
        """The values of a command's ``{placeholders}`` (config.TEMPLATE_FIELDS)."""
        a = self.assessment

        def iso(t: datetime | None) -> str:
            return t.isoformat().replace("+00:00", "Z") if t is not None else ""

        days = a.days_to(self.bound)
        return {
            "path": a.path,
            "threshold": threshold_label(a.threshold),
            "threshold_bytes": f"{a.threshold_bytes:.0f}",
            "eta": iso(a.eta),
            "lower": iso(a.lower),
            "upper": iso(a.upper),
            "days": f"{days:.1f}" if days is not None else "",
            "used_bytes": f"{a.used_bytes:.0f}" if a.used_bytes is not None else "",
            "capacity_bytes": f"{a.capacity_bytes:.0f}" if a.capacity_bytes is not None else "",
            "episode": self.episode,
        }

    def payload(self, dry_run: bool) -> dict[str, Any]:
        return {
            "kind": "regwatch.capacity",
            "episode": self.episode,
            "bound": self.bound,
            "dry_run": dry_run,
            "days_to_threshold": self.assessment.days_to(self.bound),
            **self.assessment.to_dict(),
        }


Result = tuple[str, str, dict[str, Any]]


class Runner(Protocol):
    def __call__(self, action: ActionConfig, trigger: Trigger, dry_run: bool, environ: Mapping[str, str]) -> Result: ...


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


def _ssl(action: ActionConfig) -> ssl.SSLContext | None:
    if action.url and action.url.startswith("https://") and not action.verify_tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return None


def _post(action: ActionConfig, url: str, body: dict[str, Any], headers: dict[str, str]) -> Result:
    data = json.dumps(body, sort_keys=True).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=action.timeout, context=_ssl(action)) as resp:
            status = int(resp.status)
            resp.read(4096)
    except urllib.error.HTTPError as exc:
        text = exc.read(300).decode("utf-8", "replace") if exc.fp is not None else ""
        return FAILED, _short(f"{url} answered HTTP {exc.code}: {text}"), {"http_status": exc.code}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return FAILED, _short(f"POST {url} failed: {reason}"), {}
    return OK, f"{url} answered HTTP {status}", {"http_status": status}


def _secret(action: ActionConfig, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(value, problem) of the action's ``auth_env``."""
    if not action.auth_env:
        return None, None
    v = environ.get(action.auth_env)
    if not v:
        return None, f"environment variable {action.auth_env} (auth_env of action {action.name!r}) is not set"
    return v, None


def run_webhook(action: ActionConfig, trigger: Trigger, dry_run: bool, environ: Mapping[str, str]) -> Result:
    assert action.url is not None
    if dry_run:
        return DRY_RUN, f"would POST the crossing as JSON to {action.url}", {}
    secret, problem = _secret(action, environ)
    if problem:
        return FAILED, problem, {}
    headers = {"Authorization": secret} if secret else {}
    return _post(action, action.url, trigger.payload(dry_run), headers)


def render_argv(action: ActionConfig, trigger: Trigger) -> list[str]:
    """The command's arguments with the placeholders filled in (validated by the config)."""
    values = trigger.fields()
    return [arg.format_map(values) for arg in action.argv]


def run_command(action: ActionConfig, trigger: Trigger, dry_run: bool, environ: Mapping[str, str]) -> Result:
    argv = render_argv(action, trigger)
    if dry_run:
        return DRY_RUN, f"would run {argv!r}", {"argv": argv}
    try:
        proc = subprocess.run(argv, shell=False, capture_output=True, text=True, timeout=action.timeout,
                              env=dict(environ), check=False, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return FAILED, f"command {argv[0]!r} not found; give its full path in argv", {"argv": argv}
    except subprocess.TimeoutExpired:
        return FAILED, f"{argv[0]!r} ran longer than {action.timeout:g} s and was killed", {"argv": argv}
    except OSError as exc:
        return FAILED, f"cannot run {argv[0]!r}: {exc.strerror}", {"argv": argv}
    data = {"argv": argv, "exit_code": proc.returncode}
    if proc.returncode != 0:
        return FAILED, _short(f"{argv[0]!r} exited {proc.returncode}: {proc.stderr.strip()}"), data
    return OK, _short(f"{argv[0]!r} exited 0" + (f": {proc.stdout.strip()}" if proc.stdout.strip() else "")), data


def harbor_gc_request(action: ActionConfig, credentials: str | None) -> tuple[str, dict[str, Any], dict[str, str]]:
    """URL, body and headers of the "GC now" call (Harbor's ``POST /system/gc/schedule``
    with a ``Manual`` schedule: what the portal's "GC Now" button sends)."""
    assert action.url is not None
    url = action.url.rstrip("/") + HARBOR_GC_PATH
    body = {
        "schedule": {"type": "Manual"},
        "parameters": {"delete_untagged": action.delete_untagged, "workers": action.workers, "dry_run": False},
    }
    headers = {"Accept": "application/json"}
    if credentials:
        headers["Authorization"] = "Basic " + b64encode(credentials.encode()).decode()
    return url, body, headers


def run_harbor_gc(action: ActionConfig, trigger: Trigger, dry_run: bool, environ: Mapping[str, str]) -> Result:
    url, body, _ = harbor_gc_request(action, None)
    if dry_run:
        return DRY_RUN, f"would POST a manual garbage collection to {url}", {"url": url}
    secret, problem = _secret(action, environ)
    if problem:
        return FAILED, problem, {}
    if secret is not None and ":" not in secret:
        return FAILED, f"{action.auth_env} must hold user:password for Harbor's basic auth", {}
    url, body, headers = harbor_gc_request(action, secret)
    outcome, detail, data = _post(action, url, body, headers)
    if data.get("http_status") == 409:
        return SKIPPED, "Harbor answered 409: a garbage collection is already running", data
    return outcome, detail, data


def run_retention_report(action: ActionConfig, trigger: Trigger, dry_run: bool, environ: Mapping[str, str]) -> Result:
    """Read-only, so it runs in dry-run mode too; the recommendation is the record's data."""
    from regwatch.capacity.retention import retention_recommendation
    from regwatch.errors import StoreError

    now = trigger.now or trigger.assessment.now
    try:
        r = retention_recommendation(trigger.store, now, action.unused_days)
    except StoreError as exc:
        return FAILED, f"cannot read pull history: {exc}", {}
    detail = (
        f"{len(r.repositories)} repositories and {len(r.tags)} tags not pulled for {action.unused_days} days, "
        f"about {r.total_bytes:,} bytes"
    )
    return OK, detail, {"retention": r.to_dict(limit=50)}


RUNNERS: dict[str, Callable[..., Result]] = {
    "webhook": run_webhook,
    "command": run_command,
    "harbor_gc": run_harbor_gc,
    "retention_report": run_retention_report,
}


def run_action(action: ActionConfig, trigger: Trigger, dry_run: bool, environ: Mapping[str, str] | None = None) -> Result:
    """Run one action; never raises (an unexpected error becomes a "failed" outcome)."""
    env = os.environ if environ is None else environ
    try:
        return RUNNERS[action.kind](action, trigger, dry_run, env)
    except Exception as exc:  # noqa: BLE001 - an action must not stop the others
        return FAILED, _short(f"{action.kind} action {action.name!r} failed: {type(exc).__name__}: {exc}"), {}
