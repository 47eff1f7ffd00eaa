#!/usr/bin/env python3.11
"""Produce REAL Distribution registry logs, with the counts each log must yield.

A local ``docker-registry serve`` (Debian's build of distribution 2.8) is started on
127.0.0.1 with htpasswd auth, then driven by ``skopeo`` through a scripted, deterministic
scenario: pushes, pulls, inspects, failed pulls, wrong passwords, anonymous access, deletes
and failed deletes.  The registry's combined stdout+stderr (app log + access log) is kept as
the sample, and the counts are derived from **what the script did** (which skopeo
commands ran and the known blob sizes), never by parsing the log.  The registry
notifications are recorded by a small HTTP receiver, and ``garbage-collect`` runs at the end.

How each client command maps to HTTP requests was observed once in the real logs
(see sample_logs/distribution/NOTES.md); the per-command rules are encoded in the
``Scenario`` methods below.  Summary of the rules (skopeo 1.9.3, basic auth):

* every skopeo command opens with one anonymous ``GET /v2/`` -> 401 (a challenge);
  ``skopeo inspect`` without ``--raw``/``--no-tags`` makes a SECOND one (for tags/list);
* ``copy oci:... docker://`` = HEADs + uploads (POST, PATCH, PUT ?digest=) or a
  cross-repository mount (POST ?mount=&from= -> 201), then one manifest PUT -> 201;
* ``copy docker://... oci:`` = manifest GET 200 + GET of every blob (layers and config);
* ``inspect`` = manifest GET 200 + config blob GET 200 + tags/list GET;
  ``inspect --raw`` = manifest GET only;
* ``delete`` = manifest GET 200 (a delete lookup, not a pull) + DELETE by digest -> 202.
  For a missing tag it stops after the GET 404 and sends no DELETE: in the log that is
  only a failed manifest GET, so it counts as ``pulls_failed``, not ``deletes_failed``;
* wrong or unknown-user credentials: the request carrying them gets 401 with
  ``error authenticating user "<u>"`` (an auth failure); ``--no-creds`` makes skopeo
  answer the challenge with EMPTY basic credentials -> ``error authenticating user ""``
  (an anonymous denial, not an auth failure);
* the raw HTTP requests (urllib) send credentials pre-emptively, so they make no
  challenge; a raw request with no Authorization header on a repository route is an
  anonymous denial.

Counting keys (domain.md section 2): pulls, pulls_failed (manifest GET >= 400 of any
reason, incl. 401), pushes, deletes, deletes_failed (manifest DELETE >= 400), auth_failures,
anonymous_denials, challenges, bytes_pulled (blob GET 200 bytes), bytes_pushed (completed
uploads; mounts and already-present blobs move 0).  ``repositories`` holds the same keys per
repository; challenges and the ``/v2/`` login failure belong to no repository, so the
top-level numbers are the per-repository sums plus those.

Usage:
    python3.11 scripts/make_distribution_samples.py [--out DIR] [--formats text,json] [--no-tty]

Importable: ``run_scenario(workdir, formatter) -> (log_path, expected_dict)``.
Stdlib only.  Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COUNT_KEYS: tuple[str, ...] = (
    "pulls",
    "pulls_failed",
    "pushes",
    "deletes",
    "deletes_failed",
    "auth_failures",
    "anonymous_denials",
    "challenges",
    "bytes_pulled",
    "bytes_pushed",
)

REGISTRY_BIN = "docker-registry"
SKOPEO_BIN = "skopeo"
HOST = "127.0.0.1"  # loopback only, never anything else

USERS = {"ci-bot": "ci-bot-Pa55", "alice": "alice-Pa55"}
RAW_UA = "regwatch-samples/1.0 (python-urllib)"

REPO_ALPINE = "library/alpine"
REPO_APP = "team-a/app"
REPO_API = "team-b/api"

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "sample_logs" / "distribution"


class SampleError(RuntimeError):
    """The sample run could not be completed (tool missing, registry did not start, ...)."""


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


@dataclass(frozen=True)
class Image:
    tag: str  # tag inside the local OCI layout
    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (*self.layers, self.config)


def _det_bytes(seed: str, n: int) -> bytes:
    """Deterministic incompressible bytes, so a layer's gzip size is about ``n``."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def _write_blob(layout: Path, data: bytes) -> Blob:
    hexd = hashlib.sha256(data).hexdigest()
    d = layout / "blobs" / "sha256"
    d.mkdir(parents=True, exist_ok=True)
    (d / hexd).write_bytes(data)
    return Blob("sha256:" + hexd, len(data))


def _layer(seed: str, n: int) -> tuple[bytes, bytes]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = _det_bytes(seed, n)
        info = tarfile.TarInfo(f"data/{seed}.bin")
        info.size, info.mtime, info.mode = n, 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return raw, gzip.compress(raw, compresslevel=6, mtime=0)


def build_oci_layout(layout: Path, specs: dict[str, list[int]]) -> dict[str, Image]:
    """Write an OCI image layout with one image per tag; ``specs`` = tag -> layer payload sizes."""
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index: dict[str, Any] = {"schemaVersion": 2, "manifests": []}
    images: dict[str, Image] = {}
    for tag, sizes in specs.items():
        layers: list[Blob] = []
        diff_ids: list[str] = []
        for i, n in enumerate(sizes):
            raw, gz = _layer(f"{tag}-{i}", n)
            layers.append(_write_blob(layout, gz))
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        config = _write_blob(
            layout,
            json.dumps(
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "config": {"Labels": {"org.example.sample": tag}},
                    "rootfs": {"type": "layers", "diff_ids": diff_ids},
                },
                sort_keys=True,
            ).encode(),
        )
        manifest_doc = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config.digest,
                "size": config.size,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": b.digest,
                    "size": b.size,
                }
                for b in layers
            ],
        }
        manifest = _write_blob(layout, json.dumps(manifest_doc).encode())
        index["manifests"].append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest.digest,
                "size": manifest.size,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        )
        images[tag] = Image(tag, manifest, config, tuple(layers))
    (layout / "index.json").write_text(json.dumps(index))
    return images


IMAGE_SPECS: dict[str, list[int]] = {
    "small": [3_000],  # ~3 KB layer
    "medium": [20_000, 150_000],  # two layers
    "large": [1_000_000],  # ~1 MB layer
}


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    """Wait for a TCP listener. A bare connect makes no HTTP request, so no log line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SampleError(f"registry did not listen on {HOST}:{port} within {timeout}s")


def tools_missing() -> list[str]:
    """Names of the external tools this script needs that are not on PATH."""
    return [t for t in (REGISTRY_BIN, SKOPEO_BIN, "htpasswd") if shutil.which(t) is None]


class NotificationReceiver:
    """Tiny webhook endpoint on 127.0.0.1 recording each envelope (one JSON per line)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self.last = time.monotonic()
        self._lock = threading.Lock()
        path.write_text("")
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    doc = json.loads(body)
                    line = json.dumps(doc, separators=(",", ":"), sort_keys=True)
                except ValueError:
                    line = json.dumps({"unparsed": body.decode("utf-8", "replace")})
                with receiver._lock:
                    with receiver.path.open("a") as fh:
                        fh.write(line + "\n")
                    receiver.count += 1
                    receiver.last = time.monotonic()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_quiet(self, quiet: float = 1.5, timeout: float = 15.0) -> None:
        """Wait until no envelope arrived for ``quiet`` seconds (delivery is asynchronous)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                idle = time.monotonic() - self.last
            if idle >= quiet:
                return
            time.sleep(0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- counting


def _zero() -> dict[str, int]:
    return {k: 0 for k in COUNT_KEYS}


@dataclass
class Counts:
    top: dict[str, int] = field(default_factory=_zero)
    repos: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, repo: str | None, key: str, n: int = 1) -> None:
        assert key in COUNT_KEYS, key
        self.top[key] += n
        if repo is not None:
            self.repos.setdefault(repo, _zero())[key] += n

    def as_dict(self) -> dict[str, Any]:
        return {**self.top, "repositories": {r: dict(c) for r, c in sorted(self.repos.items())}}


# --------------------------------------------------------------------------- the registry


@dataclass
class Registry:
    workdir: Path
    formatter: str
    log_path: Path
    notifications_path: Path | None = None
    tty: bool = False
    port: int = 0
    config_path: Path = Path()
    proc: subprocess.Popen[bytes] | None = None
    receiver: NotificationReceiver | None = None
    _log_fh: Any = None

    def write_config(self) -> None:
        self.port = free_port()
        storage = self.workdir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        htpasswd = self.workdir / "htpasswd"
        lines = []
        for user, password in USERS.items():
            out = subprocess.run(
                ["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True
            ).stdout.strip()
            lines.append(out)
        htpasswd.write_text("\n".join(lines) + "\n")
        notif = ""
        if self.notifications_path is not None:
            self.receiver = NotificationReceiver(self.notifications_path)
            notif = f"""
notifications:
  events:
    includereferences: true
  endpoints:
    - name: regwatch-sample
      url: http://{HOST}:{self.receiver.port}/events
      timeout: 2s
      threshold: 5
      backoff: 1s
"""
        self.config_path = self.workdir / "config.yml"
        self.config_path.write_text(
            f"""version: 0.1
log:
  level: info
  formatter: {self.formatter}
  accesslog:
    disabled: false
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: {HOST}:{self.port}
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: regwatch-realm
    path: {htpasswd}
{notif}"""
        )

    def start(self) -> None:
        self.write_config()
        if self.tty:
            # `script` gives the registry a pty, so logrus switches to its TTY form.
            cmd = f"exec {REGISTRY_BIN} serve {self.config_path}"
            self.proc = subprocess.Popen(
                ["script", "-qfec", cmd, str(self.log_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        else:
            # One file for both streams: app log (stderr) and access log (stdout)
            # interleave in the order the registry wrote them, as in `docker logs`.
            self._log_fh = self.log_path.open("wb")
            self.proc = subprocess.Popen(
                [REGISTRY_BIN, "serve", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=self._log_fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_port(self.port)
        except SampleError:
            self.stop()
            raise

    def _registry_pid(self) -> int | None:
        assert self.proc is not None
        if not self.tty:
            return self.proc.pid
        # Under `script`, the registry is script's child; find it by parent pid.
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def stop(self) -> None:
        if self.receiver is not None:
            self.receiver.wait_quiet()
        if self.proc is not None and self.proc.poll() is None:
            pid = self._registry_pid()
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        if self.receiver is not None:
            self.receiver.close()
            self.receiver = None

    def garbage_collect(self, out: Path) -> str:
        """Run ``garbage-collect`` (registry stopped) with stdout (marking, plain text) and
        stderr (logrus "Deleting blob") interleaved into ``out`` in write order."""
        with out.open("wb") as fh:
            res = subprocess.run(
                [REGISTRY_BIN, "garbage-collect", str(self.config_path)],
                check=False,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=60,
            )
        text = out.read_text()
        if res.returncode != 0:
            raise SampleError(f"garbage-collect exited {res.returncode}: {text[-500:]}")
        return text

    def strip_script_banner(self) -> None:
        """`script` adds "Script started on ..." / "Script done on ..." lines; drop them so
        the file holds only what the registry wrote to its terminal (ANSI colours and CRLF kept)."""
        data = self.log_path.read_bytes().splitlines(keepends=True)
        while data and data[0].startswith(b"Script started on "):
            data.pop(0)
        while data and (data[-1].startswith(b"Script done on ") or not data[-1].strip()):
            data.pop()
        self.log_path.write_bytes(b"".join(data))


# --------------------------------------------------------------------------- the scenario


class Scenario:
    """Runs client operations against a registry and counts what each one must produce."""

    def __init__(self, reg: Registry, images: dict[str, Image], layout: Path) -> None:
        self.reg = reg
        self.images = images
        self.layout = layout
        self.counts = Counts()
        self.ops: list[str] = []
        # what the registry holds: repo -> blob digests linked there
        self.repo_blobs: dict[str, set[str]] = {}
        # repo -> tag -> image tag in layout (what each tag points to)
        self.tags: dict[str, dict[str, Image]] = {}
        # skopeo's blob-info cache: digest -> repos where it was pushed or seen
        self.known_locations: dict[str, set[str]] = {}
        # repo -> manifest digests stored there (for the expected GC outcome)
        self.revisions: dict[str, set[str]] = {}
        self.all_blobs: dict[str, int] = {}  # every blob in storage (manifests too): digest -> size
        self.by_manifest: dict[str, Image] = {i.manifest.digest: i for i in images.values()}
        self._n = 0
        cache = reg.workdir / "skopeo-home"
        cache.mkdir(exist_ok=True)
        (cache / "auth.json").write_text('{"auths":{}}')
        self.env = {
            **os.environ,
            # Isolate skopeo's blob-info cache (root uses /var/lib/containers/cache
            # otherwise, shared across runs): containers/image reads this variable as the
            # effective uid and then puts the cache under $XDG_DATA_HOME.
            "_CONTAINERS_ROOTLESS_UID": "1000",
            "XDG_DATA_HOME": str(cache / "data"),
            "XDG_CONFIG_HOME": str(cache / "config"),
            "HOME": str(cache),
            "REGISTRY_AUTH_FILE": str(cache / "auth.json"),
            "CONTAINERS_REGISTRIES_CONF": str(cache / "registries.conf"),
        }
        (cache / "registries.conf").write_text("")

    # -- plumbing

    @property
    def hostport(self) -> str:
        return f"{HOST}:{self.reg.port}"

    def _skopeo(self, args: list[str], expect_ok: bool) -> None:
        res = subprocess.run(
            [SKOPEO_BIN, "--insecure-policy", *args],
            check=False,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        ok = res.returncode == 0
        if ok != expect_ok:
            raise SampleError(
                f"skopeo {' '.join(args)} exited {res.returncode} (expected "
                f"{'success' if expect_ok else 'failure'}): {res.stderr.strip()[-400:]}"
            )
        shown = [
            re.sub(r"^([^:/@]+):.+$", r"\1:***", a)
            if prev in ("--creds", "--src-creds", "--dest-creds")
            else ("***" if prev == "-p" else a)
            for prev, a in zip(["", *args], args)
        ]
        self.ops.append(f"skopeo {' '.join(shown)} -> {'ok' if ok else 'failed'}")

    def _raw(self, method: str, path: str, user: str | None) -> int:
        req = urllib.request.Request(f"http://{self.hostport}{path}", method=method)
        req.add_header("User-Agent", RAW_UA)
        if user is not None:
            token = base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()
            req.add_header("Authorization", "Basic " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status = int(resp.status)
        except urllib.error.HTTPError as err:
            status = int(err.code)
        self.ops.append(f"raw {method} {path} user={user} -> {status}")
        return status

    def _ref(self, repo: str, tag: str) -> str:
        return f"docker://{self.hostport}/{repo}:{tag}"

    def _oci_dest(self) -> str:
        self._n += 1
        d = self.reg.workdir / "pulled" / f"p{self._n}"
        if d.exists():
            shutil.rmtree(d)
        d.parent.mkdir(parents=True, exist_ok=True)
        return f"oci:{d}:x"

    @staticmethod
    def _creds(user: str | None, password: str | None = None) -> str:
        assert user is not None
        return f"{user}:{password if password is not None else USERS[user]}"

    # -- operations (each encodes the HTTP-level rule observed in the real log)

    def push(self, image_tag: str, repo: str, tag: str, user: str = "ci-bot") -> None:
        """skopeo copy oci:LAYOUT:TAG docker://REPO:TAG -> 1 challenge, blobs, 1 manifest PUT 201."""
        img = self.images[image_tag]
        self._skopeo(
            [
                "copy",
                "--dest-creds",
                self._creds(user),
                "--dest-tls-verify=false",
                f"oci:{self.layout}:{image_tag}",
                self._ref(repo, tag),
            ],
            expect_ok=True,
        )
        self.counts.add(None, "challenges")
        have = self.repo_blobs.setdefault(repo, set())
        pushed = 0
        for layer in img.layers:
            if layer.digest in have:
                pass  # HEAD 200 in the destination repo: reused, no upload
            elif any(
                r != repo and layer.digest in self.repo_blobs.get(r, set())
                for r in self.known_locations.get(layer.digest, set())
            ):
                pass  # cross-repository mount (POST ?mount=&from= -> 201): no bytes move
            else:
                pushed += layer.size  # POST 202, PATCH 202, PUT ?digest= 201
            have.add(layer.digest)
            self.known_locations.setdefault(layer.digest, set()).add(repo)
        # skopeo never mounts the config: it is uploaded unless already in this repo
        if img.config.digest not in have:
            pushed += img.config.size
            have.add(img.config.digest)
        self.known_locations.setdefault(img.config.digest, set()).add(repo)
        self.counts.add(repo, "pushes")
        self.counts.add(repo, "bytes_pushed", pushed)
        self.revisions.setdefault(repo, set()).add(img.manifest.digest)
        for b in (*img.blobs, img.manifest):
            self.all_blobs[b.digest] = b.size
        self.tags.setdefault(repo, {})[tag] = img

    def pull(self, repo: str, tag: str, user: str = "alice") -> None:
        """skopeo copy docker://REPO:TAG oci:DIR -> 1 challenge, manifest GET 200, every blob GET 200."""
        img = self.tags[repo][tag]
        self._skopeo(
            [
                "copy",
                "--src-creds",
                self._creds(user),
                "--src-tls-verify=false",
                self._ref(repo, tag),
                self._oci_dest(),
            ],
            expect_ok=True,
        )
        self.counts.add(None, "challenges")
        self.counts.add(repo, "pulls")
        self.counts.add(repo, "bytes_pulled", sum(b.size for b in img.blobs))

    def pull_by_digest(self, repo: str, tag: str, user: str = "alice") -> None:
        img = self.tags[repo][tag]
        ref = f"docker://{self.hostport}/{repo}@{img.manifest.digest}"
        self._skopeo(
            [
                "copy",
                "--src-creds",
                self._creds(user),
                "--src-tls-verify=false",
                ref,
                self._oci_dest(),
            ],
            expect_ok=True,
        )
        self.counts.add(None, "challenges")
        self.counts.add(repo, "pulls")
        self.counts.add(repo, "bytes_pulled", sum(b.size for b in img.blobs))

    def inspect(self, repo: str, tag: str, user: str = "alice") -> None:
        """skopeo inspect -> challenge, manifest GET 200, config GET 200, challenge, tags/list GET 200."""
        img = self.tags[repo][tag]
        self._skopeo(
            ["inspect", "--creds", self._creds(user), "--tls-verify=false", self._ref(repo, tag)],
            expect_ok=True,
        )
        self.counts.add(None, "challenges", 2)
        self.counts.add(repo, "pulls")
        self.counts.add(repo, "bytes_pulled", img.config.size)

    def inspect_raw(self, repo: str, tag: str, user: str = "alice") -> None:
        """skopeo inspect --raw -> 1 challenge, manifest GET 200 only."""
        self._skopeo(
            [
                "inspect",
                "--raw",
                "--creds",
                self._creds(user),
                "--tls-verify=false",
                self._ref(repo, tag),
            ],
            expect_ok=True,
        )
        self.counts.add(None, "challenges")
        self.counts.add(repo, "pulls")

    def list_tags(self, repo: str, user: str = "alice") -> None:
        """skopeo list-tags -> 1 challenge, tags/list GET 200 (not a pull)."""
        self._skopeo(
            [
                "list-tags",
                "--creds",
                self._creds(user),
                "--tls-verify=false",
                f"docker://{self.hostport}/{repo}",
            ],
            expect_ok=True,
        )
        self.counts.add(None, "challenges")

    def pull_missing(
        self, repo: str, tag: str, user: str = "alice", raw_inspect: bool = False
    ) -> None:
        """A missing tag: 1 challenge, manifest GET 404 manifest unknown."""
        if raw_inspect:
            args = [
                "inspect",
                "--raw",
                "--creds",
                self._creds(user),
                "--tls-verify=false",
                self._ref(repo, tag),
            ]
        else:
            args = [
                "copy",
                "--src-creds",
                self._creds(user),
                "--src-tls-verify=false",
                self._ref(repo, tag),
                self._oci_dest(),
            ]
        self._skopeo(args, expect_ok=False)
        self.counts.add(None, "challenges")
        self.counts.add(repo, "pulls_failed")

    def pull_bad_password(
        self, repo: str, tag: str, user: str, password: str, copy: bool = False
    ) -> None:
        """Rejected credentials: 1 challenge, manifest GET 401 with `error authenticating user "<u>"`."""
        if copy:
            args = [
                "copy",
                "--src-creds",
                f"{user}:{password}",
                "--src-tls-verify=false",
                self._ref(repo, tag),
                self._oci_dest(),
            ]
        else:
            args = [
                "inspect",
                "--raw",
                "--creds",
                f"{user}:{password}",
                "--tls-verify=false",
                self._ref(repo, tag),
            ]
        self._skopeo(args, expect_ok=False)
        self.counts.add(None, "challenges")
        self.counts.add(repo, "auth_failures")
        self.counts.add(repo, "pulls_failed")

    def pull_anonymous(self, repo: str, tag: str, copy: bool = False) -> None:
        """--no-creds: 1 challenge, manifest GET 401 with `error authenticating user ""` (empty creds)."""
        if copy:
            args = [
                "copy",
                "--src-no-creds",
                "--src-tls-verify=false",
                self._ref(repo, tag),
                self._oci_dest(),
            ]
        else:
            args = ["inspect", "--raw", "--no-creds", "--tls-verify=false", self._ref(repo, tag)]
        self._skopeo(args, expect_ok=False)
        self.counts.add(None, "challenges")
        self.counts.add(repo, "anonymous_denials")
        self.counts.add(repo, "pulls_failed")

    def raw_anonymous_manifest(self, repo: str, tag: str) -> None:
        """A header-less GET of a manifest: 401 `invalid authorization credential` on a repo route."""
        status = self._raw("GET", f"/v2/{repo}/manifests/{tag}", None)
        if status != 401:
            raise SampleError(f"anonymous manifest GET returned {status}, expected 401")
        self.counts.add(repo, "anonymous_denials")
        self.counts.add(repo, "pulls_failed")

    def login(self, user: str, password: str) -> None:
        """skopeo login: challenge, then GET /v2/ with the credentials (200, or 401 auth failure)."""
        ok = password == USERS.get(user)
        self._skopeo(
            [
                "login",
                "--authfile",
                str(self.reg.workdir / "skopeo-home" / "login.json"),
                "--tls-verify=false",
                "-u",
                user,
                "-p",
                password,
                self.hostport,
            ],
            expect_ok=ok,
        )
        self.counts.add(None, "challenges")
        if not ok:
            self.counts.add(None, "auth_failures")  # GET /v2/ carries no repository

    def delete(self, repo: str, tag: str, user: str = "ci-bot") -> None:
        """skopeo delete -> challenge, manifest GET 200 (delete lookup), DELETE by digest 202."""
        img = self.tags[repo].pop(tag)
        self._skopeo(
            ["delete", "--creds", self._creds(user), "--tls-verify=false", self._ref(repo, tag)],
            expect_ok=True,
        )
        # deleting by digest removes every tag of that manifest in the repo
        for t, other in list(self.tags[repo].items()):
            if other.manifest.digest == img.manifest.digest:
                del self.tags[repo][t]
        self.revisions[repo].discard(img.manifest.digest)
        self.counts.add(None, "challenges")
        self.counts.add(repo, "deletes")

    def delete_missing_tag(self, repo: str, tag: str, user: str = "ci-bot") -> None:
        """skopeo delete of a missing tag: GET 404 and NO DELETE -> a failed manifest GET."""
        self._skopeo(
            ["delete", "--creds", self._creds(user), "--tls-verify=false", self._ref(repo, tag)],
            expect_ok=False,
        )
        self.counts.add(None, "challenges")
        self.counts.add(repo, "pulls_failed")

    def raw_delete(
        self, repo: str, reference: str, user: str = "ci-bot", expect: int = 404
    ) -> None:
        """A DELETE that fails (unknown digest -> 404, a tag -> 400): a failed delete."""
        status = self._raw("DELETE", f"/v2/{repo}/manifests/{reference}", user)
        if status != expect:
            raise SampleError(f"DELETE {repo}/{reference} returned {status}, expected {expect}")
        self.counts.add(repo, "deletes_failed")

    def expected_gc(self) -> dict[str, Any]:
        """What `garbage-collect` (without --delete-untagged) must report after this scenario."""
        marked: set[str] = set()
        for digests in self.revisions.values():
            for d in digests:
                img = self.by_manifest[d]
                marked.update(b.digest for b in (img.manifest, *img.blobs))
        eligible = sorted(set(self.all_blobs) - marked)
        return {
            "blobs_marked": len(marked),
            "blobs_eligible": len(eligible),
            "manifests_eligible": 0,
            "blobs_deleted": len(eligible),
            "bytes_eligible": sum(self.all_blobs[d] for d in eligible),
            "eligible_digests": eligible,
        }

    # -- the scripts

    def full(self) -> None:
        # pushes (bytes uploaded, then a mount, then a re-tag that moves nothing)
        self.push("small", REPO_ALPINE, "3.19")
        self.push("medium", REPO_APP, "1.0")
        self.push("large", REPO_API, "2.0")
        self.push("medium", REPO_API, "1.0")  # layers mounted from team-a/app, config uploaded
        self.push("small", REPO_ALPINE, "latest")  # everything already there
        self.login("ci-bot", USERS["ci-bot"])
        # pulls
        self.pull(REPO_ALPINE, "3.19")
        self.pull(REPO_APP, "1.0")
        self.pull_by_digest(REPO_APP, "1.0", user="ci-bot")
        self.inspect(REPO_API, "2.0")
        self.inspect_raw(REPO_APP, "1.0")
        self.list_tags(REPO_ALPINE)
        self.pull(REPO_API, "2.0", user="ci-bot")
        # failed pulls
        self.pull_missing(REPO_APP, "9.9")
        self.pull_missing(REPO_ALPINE, "edge", raw_inspect=True)
        # credentials rejected
        self.pull_bad_password(REPO_APP, "1.0", "alice", "wrong-password")
        self.pull_bad_password(REPO_API, "2.0", "mallory", "guess", copy=True)
        self.login("alice", "not-her-password")
        # no credentials
        self.pull_anonymous(REPO_ALPINE, "3.19")
        self.pull_anonymous(REPO_APP, "1.0", copy=True)
        self.raw_anonymous_manifest(REPO_API, "2.0")
        # deletes
        self.delete(REPO_API, "1.0")
        self.delete_missing_tag(REPO_API, "1.0")
        self.raw_delete(REPO_APP, "sha256:" + "0" * 64, expect=404)
        self.raw_delete(REPO_APP, "1.0", expect=400)  # by tag: 400 DIGEST_INVALID
        self.delete(REPO_API, "2.0")  # the 1 MB image goes; GC frees it
        self.pull(REPO_ALPINE, "latest")

    def short(self) -> None:
        """A few requests of each kind, for the TTY capture."""
        self.push("small", REPO_ALPINE, "3.19")
        self.pull(REPO_ALPINE, "3.19")
        self.pull_missing(REPO_ALPINE, "edge", raw_inspect=True)
        self.pull_bad_password(REPO_ALPINE, "3.19", "alice", "wrong-password")
        self.pull_anonymous(REPO_ALPINE, "3.19")
        self.delete(REPO_ALPINE, "3.19")


# --------------------------------------------------------------------------- entry points


def run_scenario(
    workdir: Path,
    formatter: str,
    *,
    notifications: bool = True,
    tty: bool = False,
    gc: bool = True,
    script: str = "full",
) -> tuple[Path, dict[str, Any]]:
    """Run the scripted scenario against a fresh registry in ``workdir``.

    Returns the path of the registry log (app + access lines) and the expected counts.
    Side files in ``workdir``: ``notifications.jsonl`` and ``gc.log``.
    Raises SampleError when a tool is missing or an operation did not behave as scripted.
    """
    if formatter not in ("text", "json"):
        raise SampleError(f"formatter {formatter!r} is not one of 'text', 'json'")
    missing = tools_missing() + (["script"] if tty and shutil.which("script") is None else [])
    if missing:
        raise SampleError(f"missing tools: {', '.join(missing)}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    images = build_oci_layout(workdir / "oci", IMAGE_SPECS)
    reg = Registry(
        workdir=workdir,
        formatter=formatter,
        log_path=workdir / "registry.log",
        notifications_path=(workdir / "notifications.jsonl") if notifications else None,
        tty=tty,
    )
    reg.start()
    scenario = Scenario(reg, images, workdir / "oci")
    try:
        getattr(scenario, script)()
    finally:
        reg.stop()
    if tty:
        reg.strip_script_banner()
    if gc:
        reg.garbage_collect(workdir / "gc.log")
        (workdir / "gc.expected.json").write_text(
            json.dumps(scenario.expected_gc(), indent=2, sort_keys=True) + "\n"
        )
    expected = scenario.counts.as_dict()
    (workdir / "ops.txt").write_text(
        "\n".join(scenario.ops).replace(str(workdir), "$WORKDIR") + "\n"
    )
    return reg.log_path, expected


# --------------------------------------------------------------------------- self-check

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ACCESS = re.compile(
    r'^(?P<ip>\S+) \S+ \S+ \[(?P<ts>[^\]]+)\] "(?P<method>[A-Z]+) (?P<uri>\S+) [^"]*" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) "[^"]*" "(?P<ua>[^"]*)"'
)
_KV = re.compile(r'([\w.]+)=("(?:[^"\\]|\\.)*"|\S*)')
_REPO_ROUTE = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags)/(?P<rest>.*)$")


def _app_fields(line: str) -> dict[str, str] | None:
    line = _ANSI.sub("", line).rstrip("\r\n")
    if line.startswith("{"):
        try:
            doc = json.loads(line)
        except ValueError:
            return None
        return {k: str(v) for k, v in doc.items()}
    if line.startswith("time=") or re.match(r"^[A-Z]{4}\[\d+\] ", line):
        out: dict[str, str] = {}
        if not line.startswith("time="):  # TTY form: LEVL[secs] msg<pad> k=v ...
            head, _, rest = line.partition("] ")
            out["level"] = head[:4].lower()
            m = re.search(r"\s{2,}[\w.]+=|\s[\w.]+=", rest)
            out["msg"] = rest[: m.start()].strip() if m else rest.strip()
            line = rest[m.start() :] if m else ""
        for k, v in _KV.findall(line):
            if v.startswith('"'):
                v = json.loads(v) if "\\" in v else v[1:-1]
            out.setdefault(k, v)
        return out
    return None


def tally_log(path: Path) -> dict[str, Any]:
    """Independent, minimal tally of a sample log, used only to cross-check the expected counts.

    It is NOT the source of the expected numbers; it exists so that a change in skopeo or
    registry behaviour shows up as a loud mismatch instead of a wrong expected file.
    """
    c = Counts()
    access: list[dict[str, str]] = []
    for raw in path.read_text(errors="replace").splitlines():
        line = _ANSI.sub("", raw).rstrip("\r")
        m = _ACCESS.match(line)
        if m:
            access.append(m.groupdict())
            continue
        f = _app_fields(line)
        if not f:
            continue
        msg = f.get("msg", "")
        uri = f.get("http.request.uri", "")
        route = _REPO_ROUTE.match(uri.split("?")[0])
        repo = route.group("name") if route else None
        if msg.startswith("error authenticating user"):
            user = re.search(r'user "(.*)"', msg)
            if user and user.group(1):
                c.add(repo, "auth_failures")
            else:
                c.add(repo, "anonymous_denials")
        elif "invalid authorization credential" in msg:
            if uri.split("?")[0] == "/v2/":
                c.add(None, "challenges")
            elif repo:
                c.add(repo, "anonymous_denials")
    for i, a in enumerate(access):
        path_, _, query = a["uri"].partition("?")
        route = _REPO_ROUTE.match(path_)
        if not route:
            continue
        repo, kind, status, method = (
            route.group("name"),
            route.group("kind"),
            int(a["status"]),
            a["method"],
        )
        if kind == "manifests" and method == "GET":
            if status >= 400:
                c.add(repo, "pulls_failed")
            elif status == 200:
                nxt = next(
                    (b for b in access[i + 1 :] if (b["ip"], b["ua"]) == (a["ip"], a["ua"])), None
                )
                if (
                    nxt
                    and nxt["method"] == "DELETE"
                    and nxt["uri"].startswith(f"/v2/{repo}/manifests/")
                ):
                    continue  # delete lookup
                c.add(repo, "pulls")
        elif kind == "manifests" and method == "PUT" and status == 201:
            c.add(repo, "pushes")
        elif kind == "manifests" and method == "DELETE":
            c.add(repo, "deletes" if status == 202 else "deletes_failed")
        elif kind == "blobs" and method == "GET" and status == 200:
            c.add(repo, "bytes_pulled", int(a["bytes"]))
        elif kind == "blobs" and method == "PUT" and status == 201 and "_state=" in query:
            state = urllib.parse.parse_qs(query)["_state"][0]
            blob = base64.urlsafe_b64decode(state + "=" * (-len(state) % 4))
            c.add(repo, "bytes_pushed", int(json.loads(blob[32:])["Offset"]))
    return c.as_dict()


def diff_counts(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    problems = [
        f"{k}: expected {expected[k]} got {got.get(k)}"
        for k in COUNT_KEYS
        if expected[k] != got.get(k)
    ]
    repos = set(expected["repositories"]) | set(got["repositories"])
    for r in sorted(repos):
        e = expected["repositories"].get(r, _zero())
        g = got["repositories"].get(r, _zero())
        problems += [f"{r}.{k}: expected {e[k]} got {g[k]}" for k in COUNT_KEYS if e[k] != g[k]]
    return problems


# --------------------------------------------------------------------------- CLI


def _publish(
    src_dir: Path,
    log: Path,
    expected: dict[str, Any],
    out: Path,
    name: str,
    extra: Iterable[tuple[str, str]] = (),
) -> None:
    shutil.copyfile(log, out / f"{name}.log")
    (out / f"{name}.expected.json").write_text(
        json.dumps(expected, indent=2, sort_keys=True) + "\n"
    )
    for src, dst in extra:
        if (src_dir / src).exists():
            shutil.copyfile(src_dir / src, out / dst)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    ap.add_argument("--formats", default="text,json", help="comma list of text,json")
    ap.add_argument("--no-tty", action="store_true", help="skip the TTY capture")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work directories")
    args = ap.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    missing = tools_missing()
    if missing:
        print(
            f"error: missing tools: {', '.join(missing)} (apt-get install docker-registry skopeo apache2-utils)",
            file=sys.stderr,
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    summary: list[str] = []
    failed = False
    base = Path(tempfile.mkdtemp(prefix="regwatch-distribution-"))
    try:
        runs: list[tuple[str, str, bool, str]] = [
            (f, f"registry-{f}", False, "full") for f in formats
        ]
        if not args.no_tty:
            runs.append(("text", "registry-tty", True, "short"))
        for formatter, name, tty, script in runs:
            wd = base / name
            log, expected = run_scenario(
                wd, formatter, tty=tty, script=script, gc=not tty, notifications=not tty
            )
            if name == "registry-text":
                extra = [
                    ("notifications.jsonl", "notifications.jsonl"),
                    ("gc.log", "gc.log"),
                    ("gc.expected.json", "gc.expected.json"),
                    ("ops.txt", f"{name}.ops.txt"),
                ]
            elif tty:
                extra = [("ops.txt", f"{name}.ops.txt")]
            else:
                extra = [
                    ("notifications.jsonl", f"notifications-{formatter}.jsonl"),
                    ("gc.log", f"gc-{formatter}.log"),
                    ("gc.expected.json", f"gc-{formatter}.expected.json"),
                    ("ops.txt", f"{name}.ops.txt"),
                ]
            _publish(wd, log, expected, args.out, name, extra)
            problems = diff_counts(expected, tally_log(log))
            if problems:
                failed = True
                print(
                    f"warning: {name}: the log disagrees with the scripted counts:\n  "
                    + "\n  ".join(problems),
                    file=sys.stderr,
                )
            summary.append(
                f"{name}: {sum(1 for _ in log.open('rb'))} lines, pulls={expected['pulls']} "
                f"pushes={expected['pushes']} deletes={expected['deletes']} "
                f"challenges={expected['challenges']}{' MISMATCH' if problems else ''}"
            )
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base}", file=sys.stderr)
    print(f"wrote {args.out} in {time.monotonic() - started:.1f}s: " + "; ".join(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
