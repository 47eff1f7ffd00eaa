"""The grok patterns (patterns/harbor.grok, compiled by pygrok) and the hand-written fast
path in regwatch.parsing.harbor read the same key fields from every Harbor sample line.

The grok side here only uses pygrok matches for extraction; it shares with the fast path
nothing but the tag -> component table and the two byte-level decoders (rsyslog ``#ooo``
and nginx ``\\xHH``), which transform text rather than extract fields.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pygrok import Grok

from regwatch.config import Config
from regwatch.formats import host_calibration, make_parser
from regwatch.events import Dropped, Event, RawLine
from regwatch.parsing.harbor import (
    HarborParser,
    component_of,
    decode_syslog,
    sniff,
    strip_ansi,
    unescape_nginx,
)

REPO = Path(__file__).resolve().parents[2]
GROK_FILE = REPO / "regwatch" / "parsing" / "patterns" / "harbor.grok"
SAMPLES = REPO / "sample_logs" / "harbor"
MIB = 1024 * 1024


def _patterns() -> dict[str, str]:
    pats: dict[str, str] = {}
    for line in GROK_FILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, regex = line.partition(" ")
        pats[name] = regex.strip()
    return pats


PATTERNS = _patterns()


@cache
def _grok(name: str) -> Grok:
    return Grok("%{" + name + "}", custom_patterns=PATTERNS)


def g(name: str, text: str) -> dict[str, Any] | None:
    return _grok(name).match(text)


def test_grok_file_compiles_and_every_pattern_is_named_harbor() -> None:
    assert PATTERNS
    for name in PATTERNS:
        assert name.startswith("HARBOR_"), name
        _grok(name)


def grok_view(text: str) -> dict[str, Any]:
    """Key fields of one line, read with the grok patterns only."""
    out: dict[str, Any] = {"repeat": 1}
    m = g("HARBOR_SYSLOG", text) or g("HARBOR_SYSLOG_ISO", text)
    if m is not None and component_of(m["tag"]) is not None:
        out["host"] = m["host"]
        comp = component_of(m["tag"])
        body = decode_syslog(m["body"])
        rm = g("HARBOR_REPEAT", body)
        if rm is not None:
            out["repeat"] = int(rm["repeat"])
            body = rm["body"]
    else:
        comp, body = None, text
    out["wrapped"] = m is not None and comp is not None
    if comp == "registry":
        out["component"] = "registry"
        return out  # the body is Distribution's: its patterns live with that parser
    nm = g("HARBOR_NGINX", body) if comp in (None, "proxy") else None
    if nm is not None:
        out["component"] = "proxy"
        out["client_ip"] = nm["client_ip"]
        out["status"] = int(nm["status"])
        out["sent"] = None if nm["bytes"] == "-" else int(nm["bytes"])
        rq = g("HARBOR_NGINX_REQUEST", unescape_nginx(nm["request"]))
        if rq is not None:
            out["method"] = rq["method"]
            out["path"] = rq["uri"].split("?", 1)[0]
        return out
    bm = g("HARBOR_BEEGO", strip_ansi(body))
    if bm is not None:
        out.update(
            component="core",
            client_ip=bm["client_ip"],
            status=int(bm["status"]),
            method=bm["method"],
            path=bm["path"],
        )
        return out
    lm = g("HARBOR_LOGGER", body)
    if lm is None:
        return out
    level = lm["level"].lower()
    out["level"] = "warning" if level == "warn" else level
    fields = {
        f.group("key").strip(): f.group("value")
        for f in _grok("HARBOR_FIELD").regex_obj.finditer(lm["fields"] or "")
    }
    msg = lm["msg"]
    am = g("HARBOR_AUTH_FAILED", msg)
    if am is not None:
        out.update(user=am["user"] or None, client_ip=fields.get("client IP"))
        return out
    if g("HARBOR_UI_LOGIN_FAILED", msg) is not None:
        out.update(user=None)
        return out
    au = g("HARBOR_AUDIT_MSG", msg)
    if au is not None and "operator" in fields:
        out.update(user=fields["operator"] or None, operation=au["operation"])
        return out
    step = g("HARBOR_GC_STEP", msg)
    gm = step["gc_message"] if step else msg
    for name in (
        "HARBOR_GC_DELETED_BLOB",
        "HARBOR_GC_BLOB_FAILED",
        "HARBOR_GC_DELETED_MANIFEST",
        "HARBOR_GC_MANIFEST_FAILED",
        "HARBOR_GC_UNTAGGED",
    ):
        x = g(name, gm)
        if x is not None:
            out["digest"] = x["digest"]
            if x.get("repository"):
                out["repository"] = x["repository"]
            return out
    for name in ("HARBOR_GC_FREED", "HARBOR_GC_ESTIMATE"):
        x = g(name, gm)
        if x is not None:
            out["gc_bytes"] = int(x["mb"]) * MIB
            return out
    return out


def _lines() -> list[tuple[str, int, str]]:
    out = []
    for p in sorted(SAMPLES.rglob("*.log")):
        rel = str(p.relative_to(SAMPLES))
        for n, text in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            out.append((rel, n, text))
    return out


def _fast(rel: str) -> list[Event | Dropped]:
    parser = make_parser("auto", Config(), calibration=host_calibration(str(SAMPLES / rel)))
    return [
        parser.parse(RawLine(rel, rel, t, "fp", n))
        for n, t in enumerate((SAMPLES / rel).read_text(encoding="utf-8").splitlines())
    ]


_FAST: dict[str, list[Event | Dropped]] = {}


@pytest.mark.parametrize(("rel", "n", "text"), _lines(), ids=lambda v: str(v)[:40])
def test_grok_and_fast_path_agree(rel: str, n: int, text: str) -> None:
    if rel not in _FAST:
        _FAST[rel] = _fast(rel)
    fast = _FAST[rel][n - 1]
    gv = grok_view(text)
    # the wrapper: sniff (fast) and the grok syslog patterns recognise the same lines
    assert sniff(text) == gv["wrapped"]
    if isinstance(fast, Dropped):
        return
    assert fast.repeat == gv["repeat"]
    if gv["wrapped"]:
        assert fast.host == gv["host"]
    if fast.component != "audit" and "component" in gv:
        assert fast.component == gv["component"]
    if fast.component == "registry":
        return
    for key in ("client_ip", "status", "method", "path", "digest", "repository"):
        if key in gv:
            assert getattr(fast, key) == gv[key], key
    if "user" in gv:
        assert fast.user == gv["user"]
    if "level" in gv and fast.level is not None:
        assert fast.level == gv["level"]
    if "gc_bytes" in gv:
        assert fast.bytes == gv["gc_bytes"]
    if "sent" in gv and fast.action != "blob_upload":
        assert fast.bytes == gv["sent"]
    if "operation" in gv:
        assert fast.message.startswith(f"action:{gv['operation']}")


def test_grok_reads_the_parts_the_fast_path_needs() -> None:
    m = g("HARBOR_GO_TIME", "2023-10-18 07:43:52.72521725 +0000 UTC m=+1256.975537422")
    assert m == {
        "date": "2023-10-18",
        "clock": "07:43:52.72521725",
        "offset": "+0000",
        "zone": "UTC",
    }
    row = g("HARBOR_RETENTION_ROW", "| sha256:abc | 1.0 | image |  | x | y | z | DEL       |")
    assert row is not None and row["cells"].split("|")[-1].strip() == "DEL"
    assert (
        g("HARBOR_RETENTION_REPOSITORY", " Repository: library/app ")["repository"] == "library/app"
    )
    assert (
        g("HARBOR_RETENTION_LOAD", "Load 4 candidates from repository library/app")["repository"]
        == "library/app"
    )
    step = g(
        "HARBOR_GC_STEP",
        "[4a0c9a43-7f1e-4d5b-9c2a-8e6f0b1d3c57][1/3] delete blob from storage: sha256:x",
    )
    assert step["gc_run"] == "4a0c9a43-7f1e-4d5b-9c2a-8e6f0b1d3c57" and step["gc_index"] == "1"
