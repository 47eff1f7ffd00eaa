"""Harbor's own storage accounting: ``/api/v2.0/statistics`` and ``/api/v2.0/quotas``.

Harbor counts the bytes of the artifacts it knows (``total_storage_consumption``) and
the storage quota of each project. A sample of method ``harbor`` has the total as used
bytes and the sum of the projects' storage quotas as capacity (None when one of them is
unlimited, ``-1``). The password is read from the environment when sampling and sent
only in the Authorization header; it never enters a sample, a problem or a log line.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from regwatch.config import HarborStatsConfig
from regwatch.storage.sampler import StorageProblem, StorageSample

QUOTA_PAGE = 100
MAX_QUOTA_PAGES = 100


def fetch(url: str, auth: str, timeout: float, verify_tls: bool) -> Any:
    """GET ``url`` as JSON with the Authorization value ``auth``; raises OSError/ValueError."""
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    # not sent again if Harbor redirects (possibly to another host)
    req.add_unredirected_header("Authorization", auth)
    ctx = None if verify_tls else ssl._create_unverified_context()  # the operator's choice (verify_tls: false)
    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:  # http(s) only: checked by the config
        return json.load(resp)


def harbor_sample(
    cfg: HarborStatsConfig,
    now: datetime,
    environ: Mapping[str, str],
    get: Callable[[str, str, float, bool], Any] | None = None,
) -> StorageSample | StorageProblem:
    where = f"harbor:{cfg.url}"
    password = environ.get(cfg.password_env)
    if not password:
        return StorageProblem(where, "harbor", f"Harbor statistics skipped: the environment variable {cfg.password_env} "
                              "(storage.harbor.password_env) is not set")
    auth = "Basic " + base64.b64encode(f"{cfg.username}:{password}".encode()).decode("ascii")
    get = get or fetch
    try:
        stats = get(f"{cfg.url}/api/v2.0/statistics", auth, cfg.timeout, cfg.verify_tls)
        used = int(stats["total_storage_consumption"])
        capacity: int | None = 0
        for page in range(1, MAX_QUOTA_PAGES + 1):
            quotas = get(f"{cfg.url}/api/v2.0/quotas?page={page}&page_size={QUOTA_PAGE}", auth, cfg.timeout,
                         cfg.verify_tls)
            if not isinstance(quotas, list):
                raise ValueError("the quotas answer is not a list")
            for q in quotas:
                hard = int((q.get("hard") or {}).get("storage", -1))
                if hard < 0 or capacity is None:
                    capacity = None
                else:
                    capacity += hard
            if len(quotas) < QUOTA_PAGE:
                break
        if capacity == 0:
            capacity = None  # no project has a quota: Harbor knows no capacity
    except urllib.error.HTTPError as exc:
        hint = " (check storage.harbor.username and the password variable)" if exc.code in (401, 403) else ""
        return StorageProblem(where, "harbor", f"Harbor statistics at {cfg.url} failed: HTTP {exc.code} {exc.reason}{hint}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return StorageProblem(where, "harbor", f"Harbor statistics at {cfg.url} failed: {type(exc).__name__}: {reason}")
    return StorageSample(now, where, used, capacity, "harbor")
