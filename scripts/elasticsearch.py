#!/usr/bin/env python3
"""Fetch, start and stop a throwaway Elasticsearch node for regwatch's tests and benchmarks.

The node is the official ``integ-test-zip`` distribution from Maven Central
(``org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>:zip``): the
server with x-pack core and security but without the bundled JDK and without optional
modules (no ILM, no data streams, no ingest, no painless). It runs:

* on a Temurin/OpenJDK >= 21 found under /usr/lib/jvm (or ``ES_JAVA_HOME``);
* as a non-root user: ``regwatch-es`` (created with ``useradd --system`` when the
  script runs as root), because Elasticsearch refuses to run as root;
* bound to 127.0.0.1 on a free HTTP port and a free transport port, single-node
  discovery, a 512 MiB heap (``--heap``);
* with its config, data and logs in one run directory that ``stop`` removes.

Commands (every command prints one JSON object on stdout)::

    scripts/elasticsearch.py fetch                  # ~/.m2 + unpacked copy in the cache
    scripts/elasticsearch.py java                   # which JDK would be used
    scripts/elasticsearch.py start [--secure] [--heap 512m] [--timeout 180] [--dir DIR]
    scripts/elasticsearch.py stop --dir DIR [--keep]

``start --secure`` enables security with TLS on HTTP (a CA and node certificate made by
``elasticsearch-certutil``), a file-realm superuser and a read-only user (role
``regwatch_reader``: cluster monitor, index read) with random passwords; the JSON then
carries ``username``, ``password``, ``reader_username``, ``reader_password`` and
``ca_file``. (API keys need the ``.security`` index, which this distribution cannot
create: it lacks the analysis-common module.)

Exit codes: 0 ok, 3 a prerequisite is missing (Java, Maven, the download), 4 the node
did not start (its log is printed on stderr), 2 bad usage.

Environment: ``REGWATCH_ES_VERSION`` (default below), ``REGWATCH_CACHE`` (default
``~/.cache/regwatch``), ``REGWATCH_M2_REPO`` (default ``~/.m2/repository``),
``ES_JAVA_HOME`` to force a JDK.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

#: the newest 9.x integ-test-zip that resolves from Maven Central (checked 9.2.x-9.6.0)
ES_VERSION = "9.5.4"
GROUP_PATH = "org/elasticsearch/distribution/integ-test-zip/elasticsearch"
ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{v}:zip"
SERVICE_USER = "regwatch-es"
MIN_JAVA = 21
#: where root stages a copy when the cache is not readable by the service user
SHARED_CACHE = Path("/var/cache/regwatch")


class Prerequisite(Exception):
    """Something the node needs is missing (exit 3)."""


class StartFailed(Exception):
    """The node was launched but did not become ready (exit 4)."""


def _log(msg: str) -> None:
    print(f"[elasticsearch.py] {msg}", file=sys.stderr, flush=True)


def es_version() -> str:
    return os.environ.get("REGWATCH_ES_VERSION", ES_VERSION)


def cache_dir() -> Path:
    return Path(os.environ.get("REGWATCH_CACHE", Path.home() / ".cache" / "regwatch"))


# -- fetch ---------------------------------------------------------------------------


def m2_zip(version: str) -> Path:
    repo = Path(os.environ.get("REGWATCH_M2_REPO", Path.home() / ".m2" / "repository"))
    return repo / GROUP_PATH / version / f"elasticsearch-{version}.zip"


def fetch_zip(version: str) -> Path:
    path = m2_zip(version)
    if path.is_file():
        return path
    mvn = shutil.which("mvn")
    if mvn is None:
        raise Prerequisite(
            f"{path} is not cached and Maven (mvn) is not installed: install maven, or "
            f"download {ARTIFACT.format(v=version)} into the local repository"
        )
    _log(f"fetching {ARTIFACT.format(v=version)} with Maven")
    cmd = [mvn, "-q", "-B", "dependency:get", f"-Dartifact={ARTIFACT.format(v=version)}",
           "-Dtransitive=false"]
    if "REGWATCH_M2_REPO" in os.environ:
        cmd.append(f"-Dmaven.repo.local={os.environ['REGWATCH_M2_REPO']}")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise Prerequisite(
            f"Maven could not fetch {ARTIFACT.format(v=version)} (exit {proc.returncode}):\n"
            + "\n".join(tail)
        )
    return path


def _unpack(zip_path: Path, dest: Path, version: str) -> Path:
    """Unpack atomically: into a temporary sibling, then rename (safe for parallel runs)."""
    home = dest / f"elasticsearch-{version}"
    if (home / "bin" / "elasticsearch").is_file():
        return home
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o755)
    tmp = Path(tempfile.mkdtemp(prefix=f".unpack-{version}-", dir=dest))
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for info in zf.infolist():
                target = tmp / info.filename
                if not target.resolve().is_relative_to(tmp.resolve()):
                    raise Prerequisite(f"refusing unsafe path {info.filename!r} in {zip_path}")
                zf.extract(info, tmp)
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    os.chmod(target, mode | 0o444 | (0o111 if target.is_dir() else 0))
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp / f"elasticsearch-{version}", home)
        except OSError:
            if not (home / "bin" / "elasticsearch").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return home


def _world_traversable(path: Path) -> bool:
    for p in [path, *path.parents]:
        try:
            if not os.stat(p).st_mode & stat.S_IXOTH:
                return False
        except FileNotFoundError:
            return False
    return True


def ensure_home(version: str) -> Path:
    """The unpacked distribution, fetching and unpacking on first use."""
    zip_path = fetch_zip(version)
    home = _unpack(zip_path, cache_dir(), version)
    if os.geteuid() == 0 and not _world_traversable(home):
        # e.g. /root is 0700: the service user could not read the cache there
        home = _unpack(zip_path, SHARED_CACHE, version)
    return home


# -- java ----------------------------------------------------------------------------


def _java_major(java_home: Path) -> int | None:
    release = java_home / "release"
    if release.is_file():
        m = re.search(r'^JAVA_VERSION="([^"]+)"', release.read_text(errors="replace"), re.MULTILINE)
        if m:
            parts = m.group(1).split(".")
            return int(parts[1]) if parts[0] == "1" else int(re.sub(r"\D.*", "", parts[0]))
    java = java_home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True,
                             timeout=30, check=False).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        return None
    return int(m.group(2) or 0) if m.group(1) == "1" else int(m.group(1))


def find_java() -> Path:
    """ES_JAVA_HOME if set, else the newest JDK >= 21 under /usr/lib/jvm, else JAVA_HOME/PATH."""
    forced = os.environ.get("ES_JAVA_HOME")
    if forced:
        major = _java_major(Path(forced))
        if major is None or major < MIN_JAVA:
            raise Prerequisite(f"ES_JAVA_HOME={forced!r} is not a JDK >= {MIN_JAVA}")
        return Path(forced)
    found: list[tuple[int, bool, Path]] = []
    jvm = Path("/usr/lib/jvm")
    candidates = sorted(p for p in jvm.iterdir() if p.is_dir()) if jvm.is_dir() else []
    for extra in (os.environ.get("JAVA_HOME"), shutil.which("java")):
        if extra:
            p = Path(extra).resolve()
            candidates.append(p.parent.parent if p.name == "java" else p)
    for home in candidates:
        if not (home / "bin" / "java").is_file() or home.is_symlink():
            continue
        major = _java_major(home)
        if major is not None and major >= MIN_JAVA:
            found.append((major, "temurin" in home.name, home))
    if not found:
        raise Prerequisite(
            f"no JDK >= {MIN_JAVA} found under /usr/lib/jvm, JAVA_HOME or PATH: install "
            f"Temurin 21+ (e.g. apt-get install temurin-21-jdk) or set ES_JAVA_HOME"
        )
    return max(found)[2]


# -- users and ports -----------------------------------------------------------------


def ensure_service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise Prerequisite(f"running as root and user {SERVICE_USER!r} is missing; no useradd")
    subprocess.run(
        [useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", "--user-group", SERVICE_USER],
        check=True, capture_output=True, timeout=60,
    )
    return pwd.getpwnam(SERVICE_USER)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, uid, gid)
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


# -- start / stop --------------------------------------------------------------------


def _log_tail(rundir: Path, lines: int = 120) -> str:
    out = []
    logs = rundir / "logs"
    for name in ("console.log", "regwatch-test.log"):
        p = logs / name
        if p.is_file():
            text = p.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"----- {p} (last {len(text)} lines) -----")
            out.extend(text)
    return "\n".join(out) if out else f"(no log files in {logs})"


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _read_pid(rundir: Path) -> int | None:
    try:
        return int((rundir / "es.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _run_as(user: pwd.struct_passwd | None, argv: list[str], env: dict[str, str],
            **kw: Any) -> subprocess.CompletedProcess[bytes]:
    if user is not None:
        argv = ["runuser", "-u", user.pw_name, "--", "env",
                *[f"{k}={v}" for k, v in env.items()], *argv]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    else:
        env = {**os.environ, **env}
    return subprocess.run(argv, env=env, **kw, check=False)


def _make_certs(home: Path, java: Path, certs: Path) -> None:
    certs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ES_JAVA_HOME": str(java), "ES_PATH_CONF": str(home / "config")}
    tool = str(home / "bin" / "elasticsearch-certutil")
    for args, out in (
        (["ca", "--pem", "--days", "30"], "ca.zip"),
        (["cert", "--pem", "--days", "30", "--ca-cert", str(certs / "ca" / "ca.crt"),
          "--ca-key", str(certs / "ca" / "ca.key"), "--ip", "127.0.0.1", "--dns", "localhost",
          "--name", "node"], "node.zip"),
    ):
        proc = subprocess.run([tool, *args, "--silent", "--out", str(certs / out)], env=env,
                              capture_output=True, text=True, timeout=180, check=False)
        if proc.returncode != 0:
            raise StartFailed(f"elasticsearch-certutil {args[0]} failed:\n{proc.stdout}{proc.stderr}")
        with zipfile.ZipFile(certs / out) as zf:
            zf.extractall(certs)


def _wait_ready(url: str, pid_file: Path, deadline: float, auth: str | None,
                ctx: ssl.SSLContext | None) -> dict[str, Any]:
    req = urllib.request.Request(f"{url}/_cluster/health?wait_for_status=yellow&timeout=2s")
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    last = "no answer yet"
    while time.monotonic() < deadline:
        pid = _read_pid(pid_file.parent)
        if pid is not None and not _pid_alive(pid):
            raise StartFailed(f"the node (pid {pid}) exited during startup")
        try:
            with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
                body = json.loads(resp.read())
                if body.get("status") in ("green", "yellow"):
                    return dict(body)
                last = f"cluster status {body.get('status')}"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
        except (OSError, ValueError) as e:
            last = str(e)
        time.sleep(0.5)
    raise StartFailed(f"not ready at {url} before the timeout (last: {last})")


def start(args: argparse.Namespace) -> dict[str, Any]:
    version = es_version()
    home = ensure_home(version)
    java = find_java()
    user = ensure_service_user() if os.geteuid() == 0 else None

    if args.dir:
        rundir = Path(args.dir).resolve()
        rundir.mkdir(parents=True, exist_ok=True)
    else:
        rundir = Path(tempfile.mkdtemp(prefix="regwatch-es-"))
    os.chmod(rundir, 0o755)
    conf = rundir / "config"
    if conf.exists():
        shutil.rmtree(conf)
    shutil.copytree(home / "config", conf)
    for sub in ("data", "logs", "tmp"):
        (rundir / sub).mkdir(exist_ok=True)

    secure = bool(args.secure)
    username, password, ca_file = "regwatch-admin", secrets.token_urlsafe(18), None
    if secure:
        _make_certs(home, java, conf / "certs")
        ca_file = str(conf / "certs" / "ca" / "ca.crt")
    if user is not None:
        _chown_tree(rundir, user.pw_uid, user.pw_gid)

    env = {
        "ES_JAVA_HOME": str(java),
        "ES_PATH_CONF": str(conf),
        "ES_TMPDIR": str(rundir / "tmp"),
        "ES_JAVA_OPTS": f"-Xms{args.heap} -Xmx{args.heap}",
        "HOME": str(rundir),
    }
    reader, reader_password = "regwatch-reader", secrets.token_urlsafe(18)
    if secure:
        # file-based role and users: the integ-test-zip has no analysis-common module, which
        # the .security index needs, so native users, roles and API keys cannot be created
        with open(conf / "roles.yml", "a") as f:
            f.write("\nregwatch_reader:\n  cluster: [monitor]\n  indices:\n"
                    "    - names: ['*']\n      privileges: [read, view_index_metadata]\n")
        for name, pw, role in ((username, password, "superuser"),
                               (reader, reader_password, "regwatch_reader")):
            proc = _run_as(user, [str(home / "bin" / "elasticsearch-users"), "useradd", name,
                                  "-p", pw, "-r", role], env,
                           capture_output=True, timeout=180, cwd=str(rundir))
            if proc.returncode != 0:
                raise StartFailed(f"elasticsearch-users failed: {proc.stdout!r} {proc.stderr!r}")

    last_error: StartFailed | None = None
    for attempt in range(3):  # a port picked as free can be taken before the node binds it
        http_port, transport_port = (args.port or free_port()), free_port()
        while transport_port == http_port:
            transport_port = free_port()
        settings = {
            "cluster.name": "regwatch-test",
            "node.name": "regwatch-test-node",
            "path.data": str(rundir / "data"),
            "path.logs": str(rundir / "logs"),
            "network.host": "127.0.0.1",
            "http.port": http_port,
            "transport.port": transport_port,
            "discovery.type": "single-node",
            "cluster.routing.allocation.disk.threshold_enabled": False,
            "action.destructive_requires_name": False,
            "xpack.security.enabled": secure,
        }
        if secure:
            settings |= {
                "xpack.security.http.ssl.enabled": True,
                "xpack.security.http.ssl.key": "certs/node/node.key",
                "xpack.security.http.ssl.certificate": "certs/node/node.crt",
                "xpack.security.http.ssl.certificate_authorities": "certs/ca/ca.crt",
            }
        (conf / "elasticsearch.yml").write_text(
            "".join(f"{k}: {json.dumps(v)}\n" for k, v in settings.items())
        )
        for stale in ("es.pid",):
            (rundir / stale).unlink(missing_ok=True)
        console = open(rundir / "logs" / "console.log", "ab")
        if user is not None:
            os.chown(rundir / "logs" / "console.log", user.pw_uid, user.pw_gid)
        t0 = time.monotonic()
        deadline = t0 + args.timeout
        try:
            # -d: the CLI daemonizes the server and returns once it has started (or failed)
            proc = _run_as(user, [str(home / "bin" / "elasticsearch"), "-d", "-p",
                                  str(rundir / "es.pid")], env, stdout=console,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           timeout=args.timeout, cwd=str(rundir / "logs"))
        except subprocess.TimeoutExpired:
            console.close()
            _kill(rundir)
            raise StartFailed(f"bin/elasticsearch -d did not return within {args.timeout}s")
        console.close()
        scheme = "https" if secure else "http"
        url = f"{scheme}://127.0.0.1:{http_port}"
        try:
            if proc.returncode != 0:
                raise StartFailed(f"bin/elasticsearch exited with {proc.returncode}")
            ctx = ssl.create_default_context(cafile=ca_file) if secure else None
            health = _wait_ready(url, rundir / "es.pid", deadline,
                                 f"{username}:{password}" if secure else None, ctx)
        except StartFailed as e:
            _kill(rundir)
            text = _log_tail(rundir, 400)
            if re.search(r"Bind(Http|Transport)Exception|Address already in use", text) and attempt < 2:
                _log(f"port clash ({http_port}/{transport_port}), retrying with other ports")
                last_error = e
                continue
            raise StartFailed(f"{e}\n{_log_tail(rundir)}") from None
        info: dict[str, Any] = {
            "url": url,
            "version": version,
            "pid": _read_pid(rundir),
            "dir": str(rundir),
            "home": str(home),
            "java_home": str(java),
            "user": user.pw_name if user else pwd.getpwuid(os.geteuid()).pw_name,
            "http_port": http_port,
            "transport_port": transport_port,
            "heap": args.heap,
            "secure": secure,
            "startup_seconds": round(time.monotonic() - t0, 1),
            "status": health.get("status"),
            "log": str(rundir / "logs" / "regwatch-test.log"),
        }
        if secure:
            info |= {"username": username, "password": password, "ca_file": ca_file,
                     "reader_username": reader, "reader_password": reader_password}
        (rundir / "node.json").write_text(json.dumps(info, indent=2))
        return info
    raise StartFailed(str(last_error))


def _kill(rundir: Path, timeout: float = 30.0) -> bool:
    """SIGTERM the node recorded in ``rundir/es.pid`` (and only it); SIGKILL after ``timeout``."""
    pid = _read_pid(rundir)
    if pid is None or not _pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True


def stop(args: argparse.Namespace) -> dict[str, Any]:
    rundir = Path(args.dir)
    stopped = _kill(rundir)
    if not args.keep and (rundir / "config").is_dir():
        shutil.rmtree(rundir, ignore_errors=True)
    return {"dir": str(rundir), "stopped": stopped, "removed": not args.keep}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="make sure the distribution is cached and unpacked")
    sub.add_parser("java", help="print the JDK that would run the node")
    p = sub.add_parser("start", help="start a node and wait until it answers")
    p.add_argument("--dir", help="run directory (default: a new /tmp/regwatch-es-*)")
    p.add_argument("--secure", action="store_true", help="security + TLS + a superuser")
    p.add_argument("--heap", default="512m")
    p.add_argument("--timeout", type=float, default=180.0)
    p.add_argument("--port", type=int, default=0, help="HTTP port (default: a free one); a restart with --dir of a kept node reuses its data")
    p = sub.add_parser("stop", help="stop the node of a run directory and remove it")
    p.add_argument("--dir", required=True)
    p.add_argument("--keep", action="store_true", help="keep the run directory")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "fetch":
            out: dict[str, Any] = {"version": es_version(), "home": str(ensure_home(es_version()))}
        elif args.cmd == "java":
            java = find_java()
            out = {"java_home": str(java), "major": _java_major(java)}
        elif args.cmd == "start":
            out = start(args)
        else:
            out = stop(args)
    except Prerequisite as e:
        print(f"missing prerequisite: {e}", file=sys.stderr)
        return 3
    except StartFailed as e:
        print(f"Elasticsearch did not start: {e}", file=sys.stderr)
        return 4
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
