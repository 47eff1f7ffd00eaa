"""Synthetic Distribution registry logs in the real 2.8 text format, for benchmarks.

The line shapes are copied from real `docker-registry` output (sample_logs/distribution/);
only names, ids, sizes and times vary. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import random
import uuid
from datetime import datetime, timedelta, timezone

REPOS = [f"team-{t}/svc-{s}" for t in "abcdefgh" for s in range(12)] + ["library/alpine", "library/nginx"]
UAS = ["skopeo/1.9.3", "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1.0 os/linux arch/amd64", "containerd/1.7.2"]
USERS = ["alice", "bob", "ci-bot", "deployer"]


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}" + "123Z"


def _clf(t: datetime) -> str:
    return t.strftime("%d/%b/%Y:%H:%M:%S +0000")


def request_lines(rng: random.Random, t: datetime, method: str, uri: str, status: int, written: int, repo: str | None, ua: str, ip: str, user: str | None, err: str | None) -> list[str]:
    rid = str(uuid.UUID(int=rng.getrandbits(128)))
    port = rng.randint(30000, 60000)
    common = (
        f'go.version=go1.19.8 http.request.host="registry.example.com:5000" http.request.id={rid} '
        f'http.request.method={method} http.request.remoteaddr="{ip}:{port}" http.request.uri="{uri}" '
        f'http.request.useragent="{ua}"'
    )
    vars_ = f" vars.name={repo}" if repo else ""
    out = []
    if status == 401 and repo is None:
        out.append(
            f'time="{_ts(t)}" level=warning msg="error authorizing context: basic authentication challenge for realm \\"basic-realm\\": invalid authorization credential" {common}'
        )
    elif status == 401:
        out.append(f'time="{_ts(t)}" level=error msg="error authenticating user \\"{user}\\": authentication failure" {common}{vars_}')
        out.append(
            f'time="{_ts(t)}" level=warning msg="error authorizing context: basic authentication challenge for realm \\"basic-realm\\": authentication failure" {common}{vars_}'
        )
    else:
        out.append(f'time="{_ts(t)}" level=info msg="authorized request" {common}{vars_}')
        dur = f"{rng.uniform(0.3, 40):.6f}ms"
        if status >= 400:
            out.append(
                f'time="{_ts(t)}" level=error msg="response completed with error" auth.user.name={user} err.code="{err}" err.message="{err}" {common} '
                f'http.response.contenttype="application/json; charset=utf-8" http.response.duration={dur} http.response.status={status} http.response.written={written}{vars_}'
            )
        else:
            out.append(
                f'time="{_ts(t)}" level=info msg="response completed" {common} http.response.contenttype="application/octet-stream" '
                f"http.response.duration={dur} http.response.status={status} http.response.written={written}"
            )
    out.append(f'{ip} - - [{_clf(t)}] "{method} {uri} HTTP/1.1" {status} {written} "" "{ua}"')
    return out


def generate(n_lines: int, seed: int = 7, start: datetime | None = None):
    rng = random.Random(seed)
    t = start or datetime(2026, 1, 1, tzinfo=timezone.utc)
    produced = 0
    while produced < n_lines:
        t += timedelta(milliseconds=rng.randint(1, 400))
        ip = f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        ua = rng.choice(UAS)
        user = rng.choice(USERS)
        repo = rng.choice(REPOS)
        r = rng.random()
        batch: list[str] = []
        batch += request_lines(rng, t, "GET", "/v2/", 401, 87, None, ua, ip, None, None)
        if r < 0.70:  # pull: manifest + 2 blobs
            batch += request_lines(rng, t, "GET", f"/v2/{repo}/manifests/v{rng.randint(1, 9)}", 200, 1234, repo, ua, ip, user, None)
            for _ in range(2):
                d = "sha256:" + "%064x" % rng.getrandbits(256)
                batch += request_lines(rng, t, "GET", f"/v2/{repo}/blobs/{d}", 200, rng.randint(1000, 50_000_000), repo, ua, ip, user, None)
        elif r < 0.80:  # missing tag
            batch += request_lines(rng, t, "GET", f"/v2/{repo}/manifests/nope", 404, 96, repo, ua, ip, user, "manifest unknown")
        elif r < 0.88:  # wrong password
            batch += request_lines(rng, t, "GET", f"/v2/{repo}/manifests/v1", 401, 145, repo, ua, ip, user, None)
        elif r < 0.97:  # push
            d = "sha256:" + "%064x" % rng.getrandbits(256)
            batch += request_lines(rng, t, "HEAD", f"/v2/{repo}/blobs/{d}", 404, 157, repo, ua, ip, user, "blob unknown")
            batch += request_lines(rng, t, "PUT", f"/v2/{repo}/manifests/v{rng.randint(1, 9)}", 201, 0, repo, ua, ip, user, None)
        else:  # delete by tag
            d = "sha256:" + "%064x" % rng.getrandbits(256)
            batch += request_lines(rng, t, "GET", f"/v2/{repo}/manifests/old", 200, 1234, repo, ua, ip, user, None)
            batch += request_lines(rng, t, "DELETE", f"/v2/{repo}/manifests/{d}", 202, 0, repo, ua, ip, user, None)
        for line in batch:
            yield line
            produced += 1
            if produced >= n_lines:
                return


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    with open(a.out, "w") as fh:
        buf = []
        for line in generate(a.lines, a.seed):
            buf.append(line)
            if len(buf) >= 10000:
                fh.write("\n".join(buf) + "\n")
                buf = []
        if buf:
            fh.write("\n".join(buf) + "\n")


if __name__ == "__main__":
    main()
