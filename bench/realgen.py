"""Distribution registry logs written the way the registry's own formatters write them.

Written independently of bench/synth.py (which copies the line shapes of one capture):
this generator builds each line from the fields the registry puts in the request context
and renders them with re-implementations of the formatters the registry uses, so every
rule of those formatters applies to every value:

- logrus ``TextFormatter``: ``time``, ``level``, ``msg`` first (``msg`` left out when
  empty), then the other keys **sorted**; a value is quoted only when it has a character
  outside ``[A-Za-z0-9-._/@^+]``, with Go's ``%q`` (``strconv.Quote``: ``\\"``, ``\\\\``,
  ``\\n``...; printable non-ASCII such as ``µ`` kept); an empty value prints as ``key=``;
  times are RFC 3339 with the fraction's trailing zeros trimmed (0 to 9 digits);
- logrus ``JSONFormatter``: one object, keys sorted (Go's ``encoding/json`` on a map), HTML
  escaping on (``<``, ``>``, ``&`` as ``\\u003c``...), status and bytes as numbers, the
  duration as Go's ``Duration.String()``;
- gorilla/handlers' combined access line (the registry's access log in both formatters):
  ``host - user [dd/Mon/yyyy:HH:MM:SS +0000] "METHOD URI PROTO" status size "referer" "ua"``
  with ``\\`` and ``"`` escaped in the quoted fields;
- Go's ``time.Duration.String()`` (``812ns``, ``812.5µs``, ``4.075367ms``, ``1.5s``, ``1m51.9s``).

Traffic: many clients (docker with its ``UpstreamClient(Docker-Client/... \\(linux\\))``
agent, containerd/CRI, skopeo, Go clients) pulling, some pushing (blob HEAD 404s, upload
start, PATCH and PUT with ``_state`` and a percent-encoded ``digest``, cross-repository
mounts, manifest PUT), deletes by tag, tag lists, the anonymous ``GET /v2/`` challenge,
failed logins and refused tokens, 404s for missing tags and blobs.

``--auth token`` (default) is a registry behind a token server: ``auth.user.name`` on every
request line after authorization and the user in the access line's user field; the
challenge is ``authorization token required``. ``--auth basic`` is htpasswd as in
sample_logs/distribution/ (2.8: ``auth.user.name`` only on error lines, ``-`` as the access
user), the mode whose line shapes tests/unit/test_fast_slow_parity.py checks against the
real captures.

    python bench/realgen.py --lines 1000000 --format text --out bench/out/real-text.log
    python bench/realgen.py --lines 1000000 --format json --out bench/out/real-json.log
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

# -- the formatters ---------------------------------------------------------------------
_BARE = re.compile(r"^[A-Za-z0-9\-._/@^+]*$")


def go_quote(s: str) -> str:
    """Go's strconv.Quote for the characters registry values hold."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def text_value(v: Any) -> str:
    s = v if isinstance(v, str) else str(v)
    if s == "":
        return ""
    return s if _BARE.match(s) else go_quote(s)


def rfc3339nano(t: datetime, ns: int) -> str:
    """Go's RFC3339Nano: up to 9 fractional digits, trailing zeros trimmed (and the dot
    with them when the fraction is zero)."""
    frac = f"{ns:09d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def text_line(time_s: str, level: str, msg: str, fields: dict[str, Any]) -> str:
    parts = [f"time={text_value(time_s)}", f"level={level}"]
    if msg != "":
        parts.append(f"msg={text_value(msg)}")
    for k in sorted(fields):
        parts.append(f"{k}={text_value(fields[k])}")
    return " ".join(parts)


def json_line(time_s: str, level: str, msg: str, fields: dict[str, Any]) -> str:
    doc = dict(fields)
    doc["time"], doc["level"], doc["msg"] = time_s, level, msg
    s = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    # Go's encoder escapes <, >, & (HTML safety) and U+2028/2029
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def clf_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def access_line(ip: str, user: str | None, t: datetime, method: str, uri: str, status: int, size: int, ua: str) -> str:
    return (f"{ip} - {user or '-'} [{t.strftime('%d/%b/%Y:%H:%M:%S +0000')}] "
            f'"{method} {uri} HTTP/1.1" {status} {size} {clf_quote("")} {clf_quote(ua)}')


def go_duration(ns: int) -> str:
    """time.Duration.String()."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    if u < 1_000_000_000:
        if u < 1_000:
            s = f"{u}ns"
        elif u < 1_000_000:
            s = _frac(u, 1_000) + "µs"
        else:
            s = _frac(u, 1_000_000) + "ms"
    else:
        h, rem = divmod(u, 3_600_000_000_000)
        m, rem = divmod(rem, 60_000_000_000)
        secs = _frac(rem, 1_000_000_000) + "s"
        s = (f"{h}h{m}m" if h else (f"{m}m" if m else "")) + secs
    return ("-" if neg else "") + s


def _frac(v: int, unit: int) -> str:
    whole, frac = divmod(v, unit)
    digits = len(str(unit)) - 1
    f = f"{frac:0{digits}d}".rstrip("0")
    return f"{whole}.{f}" if f else f"{whole}"


# -- the traffic ----------------------------------------------------------------------------
DOCKER_VERSIONS = ["24.0.7", "25.0.3", "20.10.24", "26.1.4"]
GO_VERSIONS = {"24.0.7": "go1.20.10", "25.0.3": "go1.21.6", "20.10.24": "go1.19.7", "26.1.4": "go1.21.11"}
KERNELS = ["6.1.0-18-amd64", "5.15.0-91-generic", "6.5.0-1014-aws", "5.10.205-195.807.amzn2.x86_64"]


def docker_ua(rng: random.Random) -> str:
    v = rng.choice(DOCKER_VERSIONS)
    commit = "%07x" % rng.getrandbits(28)
    return (f"docker/{v} go/{GO_VERSIONS[v]} git-commit/{commit} kernel/{rng.choice(KERNELS)} os/linux "
            f"arch/amd64 UpstreamClient(Docker-Client/{v} \\(linux\\))")


def user_agents(rng: random.Random) -> list[tuple[str, float, str]]:
    """(user agent, weight, client kind)."""
    uas: list[tuple[str, float, str]] = []
    for _ in range(12):
        uas.append((docker_ua(rng), 3.0, "docker"))
    for v in ("1.7.2", "1.6.21", "1.7.11", "v1.7.13"):
        uas.append((f"containerd/{v}", 4.0, "containerd"))
    uas.append(("containerd/1.6.24+unknown", 2.0, "containerd"))
    uas.append(("cri-o/1.28.1 go/go1.20.10 os/linux arch/amd64", 1.0, "containerd"))
    for v in ("1.9.3", "1.13.3", "1.14.2"):
        uas.append((f"skopeo/{v}", 1.0, "skopeo"))
    uas.append(("Go-http-client/1.1", 0.5, "go"))
    uas.append(("buildkit/v0.12", 0.8, "docker"))
    return uas


class Gen:
    def __init__(self, seed: int, fmt: str, auth: str, start: datetime | None = None) -> None:
        self.rng = random.Random(seed)
        self.fmt = fmt
        self.auth = auth
        self.t = start or datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
        self.ns = 0
        r = self.rng
        self.host = "registry.corp.example:5000"
        self.go = "go1.19.8"
        teams = ["platform", "payments", "search", "ml", "web", "data", "infra", "mobile", "ci", "sec"]
        self.repos = [f"{t}/{s}" for t in teams for s in ("api", "worker", "frontend", "base", "jobs", "gateway")]
        self.repos += ["library/alpine", "library/nginx", "library/python", "library/golang", "mirror/busybox"]
        self.repo_w = [1.0 / (i + 1) ** 0.9 for i in range(len(self.repos))]
        self.users = ["ci-bot", "deployer", "alice", "bob", "k8s-puller", "build-svc", "carol", "release-bot"]
        self.user_w = [6, 5, 1, 1, 12, 3, 1, 2]
        self.uas = user_agents(r)
        self.ua_w = [w for _, w, _ in self.uas]
        self.clients = [f"10.{r.randint(0, 40)}.{r.randint(0, 255)}.{r.randint(1, 254)}" for _ in range(400)]
        self.tags = ["latest", "v1.2.3", "1.0", "2024.06.1", "main", "stable", "3.19", "sha-4f2a9c1"]

    # -- time: several requests per millisecond, nanosecond clock
    def tick(self, lo_us: int = 20, hi_us: int = 900) -> tuple[datetime, str]:
        self.ns += self.rng.randint(lo_us * 1000, hi_us * 1000)
        if self.rng.random() < 0.002:
            self.ns = (self.ns // 1_000_000) * 1_000_000  # a whole millisecond now and then
        if self.ns >= 1_000_000_000:
            self.t += timedelta(seconds=self.ns // 1_000_000_000)
            self.ns %= 1_000_000_000
        return self.t, rfc3339nano(self.t, self.ns)

    def dur(self, kind: str) -> int:
        r = self.rng
        if kind == "fast":
            return int(r.lognormvariate(12.5, 0.9))  # ~270 µs median
        if kind == "blob":
            x = r.random()
            return int(r.lognormvariate(16.5, 1.6)) if x < 0.97 else r.randint(60, 140) * 1_000_000_000
        return int(r.lognormvariate(14.5, 1.1))  # ~2 ms

    def digest(self) -> str:
        return "sha256:" + "%064x" % self.rng.getrandbits(256)

    def rid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def state(self, repo: str, upload: str, offset: int, started: str) -> str:
        doc = json.dumps({"Name": repo, "UUID": upload, "Offset": offset, "StartedAt": started}, separators=(",", ":"))
        raw = self.rng.getrandbits(256).to_bytes(32, "big") + doc.encode()
        return base64.urlsafe_b64encode(raw).decode()

    # -- lines
    def app(self, level: str, msg: str, fields: dict[str, Any]) -> str:
        _, ts = self.tick(1, 30)
        if self.fmt == "json":
            return json_line(ts, level, msg, fields)
        return text_line(ts, level, msg, fields)

    def request(self, c: dict[str, Any], method: str, uri: str, status: int, written: int, *,
                vars_: dict[str, str] | None = None, err: tuple[str, str, str | None] | None = None,
                ctype: str | None = None, rctype: str | None = None, dkind: str = "mid",
                authn: str = "ok") -> list[str]:
        """The lines of one request: app lines in the registry's order, then the access line.

        authn: ok (authorized), challenge (no credentials), badpass (basic: rejected
        credentials), badtoken (token: refused token)."""
        req = {
            "go.version": self.go,
            "http.request.host": self.host,
            "http.request.id": self.rid(),
            "http.request.method": method,
            "http.request.remoteaddr": f"{c['ip']}:{self.rng.randint(32768, 60999)}",
            "http.request.uri": uri,
            "http.request.useragent": c["ua"],
        }
        if ctype:
            req["http.request.contenttype"] = ctype
        v = {f"vars.{k}": x for k, x in (vars_ or {}).items()}
        out: list[str] = []
        user = c["user"]
        token = self.auth == "token"
        if authn == "challenge":
            realm = "token required" if token else 'basic authentication challenge for realm "registry-realm"'
            msg = ("error authorizing context: authorization token required" if token
                   else f"error authorizing context: {realm}: invalid authorization credential")
            out.append(self.app("warning", msg, {**req, **v}))
            status, written, acc_user = 401, 87 if not token else 145, None
        elif authn == "badpass":
            out.append(self.app("error", f'error authenticating user "{user}": authentication failure', {**req, **v}))
            out.append(self.app("warning", 'error authorizing context: basic authentication challenge for realm '
                                '"registry-realm": authentication failure', {**req, **v}))
            status, written, acc_user = 401, 145, None
        elif authn == "badtoken":
            out.append(self.app("warning", "error authorizing context: invalid token", {**req, **v}))
            status, written, acc_user = 401, 145, None
        else:
            au = {"auth.user.name": user} if token else {}
            out.append(self.app("info", "authorized request", {**au, **req, **v}))
            resp = {
                "http.response.duration": go_duration(self.dur(dkind)),
                "http.response.status": status,
                "http.response.written": written,
            }
            if rctype:
                resp["http.response.contenttype"] = rctype
            if status >= 400:
                code, message, detail = err or ("unknown", "unknown error", None)
                e = {"err.code": code, "err.message": message}
                if detail is not None:
                    e["err.detail"] = detail
                resp["http.response.contenttype"] = "application/json; charset=utf-8"
                out.append(self.app("error", "response completed with error",
                                    {"auth.user.name": user, **e, **req, **resp, **v}))
            else:
                out.append(self.app("info", "response completed", {**au, **req, **resp}))
            acc_user = user if token else None
        t, _ = self.tick(1, 5)
        out.append(access_line(c["ip"], acc_user, t, method, uri, status, written, c["ua"]))
        return out

    # -- client operations
    def client(self) -> dict[str, Any]:
        r = self.rng
        ua, _, kind = r.choices(self.uas, self.ua_w)[0]
        return {"ip": r.choice(self.clients), "ua": ua, "kind": kind,
                "user": r.choices(self.users, self.user_w)[0]}

    def session(self) -> list[str]:
        r = self.rng
        self.tick(50, 2500)
        c = self.client()
        out = self.request(c, "GET", "/v2/", 401, 87, authn="challenge", dkind="fast")
        x = r.random()
        if x < 0.015:
            return out + self.request(c, "GET", "/v2/", 401, 145, authn="badpass" if self.auth == "basic" else "badtoken")
        out += self.request(c, "GET", "/v2/", 200, 2, rctype="application/json; charset=utf-8", dkind="fast")
        repo = r.choices(self.repos, self.repo_w)[0]
        if x < 0.78:
            out += self.pull(c, repo)
        elif x < 0.83:
            tag = "missing-" + r.choice(self.tags)
            for m in (("HEAD", "GET") if c["kind"] == "docker" else ("GET",)):
                out += self.request(c, m, f"/v2/{repo}/manifests/{tag}", 404, 0 if m == "HEAD" else 96,
                                    vars_={"name": repo, "reference": tag},
                                    err=("manifest unknown", "manifest unknown", f"unknown tag={tag}"))
        elif x < 0.85:
            out += self.request(c, "GET", f"/v2/{repo}/manifests/v1.2.3", 401, 145,
                                vars_={"name": repo, "reference": "v1.2.3"},
                                authn="badpass" if self.auth == "basic" else "badtoken")
        elif x < 0.94:
            out += self.push(c, repo)
        elif x < 0.97:
            out += self.request(c, "GET", f"/v2/{repo}/tags/list" + ("?n=100" if r.random() < 0.3 else ""), 200,
                                r.randint(40, 900), vars_={"name": repo}, rctype="application/json; charset=utf-8")
        else:
            d = self.digest()
            tag = r.choice(self.tags)
            out += self.request(c, "GET", f"/v2/{repo}/manifests/{tag}", 200, 1570, vars_={"name": repo, "reference": tag},
                                rctype="application/vnd.docker.distribution.manifest.v2+json")
            x = r.random()
            if x < 0.85:
                out += self.request(c, "DELETE", f"/v2/{repo}/manifests/{d}", 202, 0, vars_={"name": repo, "reference": d})
            elif x < 0.95:  # already gone
                out += self.request(c, "DELETE", f"/v2/{repo}/manifests/{d}", 404, 70, vars_={"name": repo, "reference": d},
                                    err=("manifest unknown", "manifest unknown", None))
            else:  # by tag: the registry wants a digest
                out += self.request(c, "DELETE", f"/v2/{repo}/manifests/{tag}", 400, 98,
                                    vars_={"name": repo, "reference": tag},
                                    err=("digest invalid", "provided digest did not match uploaded content", None))
        return out

    def pull(self, c: dict[str, Any], repo: str) -> list[str]:
        r = self.rng
        tag = r.choice(self.tags)
        mt = "application/vnd.oci.image.index.v1+json" if r.random() < 0.5 else "application/vnd.docker.distribution.manifest.list.v2+json"
        out: list[str] = []
        if c["kind"] == "docker":
            out += self.request(c, "HEAD", f"/v2/{repo}/manifests/{tag}", 200, 1609, vars_={"name": repo, "reference": tag},
                                rctype=mt, dkind="fast")
        out += self.request(c, "GET", f"/v2/{repo}/manifests/{tag}", 200, 1609, vars_={"name": repo, "reference": tag},
                            rctype=mt)
        d = self.digest()
        out += self.request(c, "GET", f"/v2/{repo}/manifests/{d}", 200, r.randint(400, 2400),
                            vars_={"name": repo, "reference": d}, rctype="application/vnd.oci.image.manifest.v1+json")
        for _ in range(r.choice((1, 2, 3, 4, 5, 7))):
            b = self.digest()
            st = 200 if r.random() < 0.985 else 404
            if st == 200:
                out += self.request(c, "GET", f"/v2/{repo}/blobs/{b}", 200, int(r.lognormvariate(14, 2.2)),
                                    vars_={"digest": b, "name": repo}, rctype="application/octet-stream", dkind="blob")
            else:
                out += self.request(c, "GET", f"/v2/{repo}/blobs/{b}", 404, 157, vars_={"digest": b, "name": repo},
                                    err=("blob unknown", "blob unknown to registry", b))
        return out

    def push(self, c: dict[str, Any], repo: str) -> list[str]:
        r = self.rng
        out: list[str] = []
        for _ in range(r.choice((1, 2, 3))):
            b = self.digest()
            x = r.random()
            if x < 0.45:  # already there
                out += self.request(c, "HEAD", f"/v2/{repo}/blobs/{b}", 200, 3185, vars_={"digest": b, "name": repo},
                                    rctype="application/octet-stream", dkind="fast")
                continue
            out += self.request(c, "HEAD", f"/v2/{repo}/blobs/{b}", 404, 157, vars_={"digest": b, "name": repo},
                                err=("blob unknown", "blob unknown to registry", b), dkind="fast")
            if x < 0.6:  # cross-repository mount
                src = r.choice(self.repos).replace("/", "%2F")
                q = f"?from={src}&mount={b.replace(':', '%3A')}"
                out += self.request(c, "POST", f"/v2/{repo}/blobs/uploads/{q}", 201, 0, vars_={"name": repo})
                continue
            up = str(uuid.UUID(int=r.getrandbits(128), version=4))
            out += self.request(c, "POST", f"/v2/{repo}/blobs/uploads/", 202, 0, vars_={"name": repo})
            started = self.t.strftime("%Y-%m-%dT%H:%M:%SZ")
            size = int(r.lognormvariate(13, 2))
            s0 = self.state(repo, up, 0, started).replace("=", "%3D")
            out += self.request(c, "PATCH", f"/v2/{repo}/blobs/uploads/{up}?_state={s0}", 202, 0,
                                vars_={"name": repo, "uuid": up}, ctype="application/octet-stream", dkind="blob")
            s1 = self.state(repo, up, size, started).replace("=", "%3D")
            out += self.request(c, "PUT", f"/v2/{repo}/blobs/uploads/{up}?_state={s1}&digest={b.replace(':', '%3A')}",
                                201, 0, vars_={"name": repo, "uuid": up}, ctype="application/octet-stream")
        tag = r.choice(self.tags)
        out += self.request(c, "HEAD", f"/v2/{repo}/manifests/{tag}", 404, 0, vars_={"name": repo, "reference": tag},
                            err=("manifest unknown", "manifest unknown", f"unknown tag={tag}"), dkind="fast")
        out += self.request(c, "PUT", f"/v2/{repo}/manifests/{tag}", 201, 0, vars_={"name": repo, "reference": tag},
                            ctype="application/vnd.oci.image.manifest.v1+json")
        return out


def generate(n_lines: int, seed: int = 11, fmt: str = "text", auth: str = "token",
             start: datetime | None = None) -> Iterator[str]:
    g = Gen(seed, fmt, auth, start)
    produced = 0
    startup = {"go.version": g.go, "instance.id": str(uuid.UUID(int=g.rng.getrandbits(128), version=4)),
               "service": "registry", "version": "2.8.2+ds1"}
    for msg in ("redis not configured", "Starting upload purge in 11m0s", "using inmemory blob descriptor cache",
                "listening on [::]:5000"):
        if produced >= n_lines:
            return
        yield g.app("info", msg, startup)
        produced += 1
    while produced < n_lines:
        for line in g.session():
            yield line
            produced += 1
            if produced >= n_lines:
                return


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--format", choices=("text", "json"), default="text")
    ap.add_argument("--auth", choices=("token", "basic"), default="token")
    a = ap.parse_args()
    with open(a.out, "w", encoding="utf-8") as fh:
        buf: list[str] = []
        for line in generate(a.lines, a.seed, a.format, a.auth):
            buf.append(line)
            if len(buf) >= 10000:
                fh.write("\n".join(buf) + "\n")
                buf = []
        if buf:
            fh.write("\n".join(buf) + "\n")


if __name__ == "__main__":
    main()
