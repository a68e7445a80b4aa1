"""Against real servers: a RabbitMQ of this test's own (a second node on spare ports, never the shared one)
stopped mid-load and started again, gunicorn (2 workers) and a real Celery worker.

The request log does not go through the broker (web -> Redis stream -> COPY), so while RabbitMQ is down the API
keeps answering — including a write whose task is enqueued after commit — and once it is back, the flush task
delivered through it moves every request into ``RequestLog``."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from nexus_backend.core.benchmark import Gunicorn, free_port
from nexus_backend.tracking.models import RequestLog
from tests.conftest import bearer
from tests.tracking.test_outage import AGENT, get, load, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]

if not shutil.which("rabbitmq-server"):
    pytest.skip("RabbitMQ is not installed on this machine (CI and the dev machines have it)", allow_module_level=True)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


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

    def start(self) -> None:
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env, check=True, capture_output=True, timeout=60)
        wait_for(lambda: _port_open(self.port), 90, f"RabbitMQ on port {self.port}")

    def stop(self) -> None:
        subprocess.run(["rabbitmqctl", "-n", self.node, "stop"], env=self.env, capture_output=True, timeout=90)
        wait_for(lambda: not _port_open(self.port), 30, "RabbitMQ to stop")


@pytest.fixture
def rabbit():
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as the rabbitmq user.
    folder = Path(tempfile.mkdtemp(prefix="nexus-rabbit-"))
    folder.chmod(0o755)
    server = OwnRabbit(folder / "node")
    try:
        server.start()
        yield server
    finally:
        if _port_open(server.port):
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _celery(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_broker_stopped_mid_load_then_restarted(rabbit, tmp_path):
    user = get_user_model().objects.create_user("broker-outage", password="x-Strong-pass-123")
    env = dict(
        os.environ,
        CELERY_BROKER_URL=rabbit.url,
        NEXUS_DB_NAME=connection.settings_dict["NAME"],
        NEXUS_REQUEST_LOG_SPOOL_DIR=str(tmp_path / "spool"),
        NEXUS_REQUEST_LOG_BUFFER_SECONDS="0.1",
        NEXUS_REQUEST_LOGGING="on",
        DEBUG="false",
    )
    web = Gunicorn(root=ROOT, workers=2, env=env)
    web.start()
    worker = None
    try:
        web.wait_healthy()
        before = load(web.port, 100)

        rabbit.stop()
        during = load(web.port, 100)
        # a write whose Celery task (close_poll at expiry) is enqueued on commit: the broker is down, the API answers
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=60)
        body = {
            "question": "Broker down?",
            "options": ["yes", "no"],
            "expires_at": (timezone.now() + timedelta(hours=1)).isoformat(),
        }
        conn.request(
            "POST",
            "/api/polls/",
            body=json.dumps(body),
            headers={"User-Agent": AGENT, "Content-Type": "application/json", "Authorization": bearer(user)},
        )
        created = conn.getresponse()
        created_status = created.status
        created.read()
        conn.close()
        during += load(web.port, 100)
        assert get(web.port, "/health/") == 503  # health says the broker is down, and still answers

        rabbit.start()
        after = load(web.port, 100)
        assert before == [200] * 100 and during == [200] * 200 and after == [200] * 100
        assert created_status == 201

        # The flush task, delivered through the restarted broker to a real worker, brings every request in.
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "nexus_backend",
                "worker",
                "--pool",
                "solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        total = 100 + 200 + 1 + 1 + 100  # GETs, the POST and the /health/ probe
        rows = lambda: RequestLog.objects.filter(user_agent=AGENT).count()  # noqa: E731
        deadline = time.monotonic() + 120
        while rows() < total and time.monotonic() < deadline:
            result = _celery(
                env,
                "from nexus_backend.tracking.tasks import flush_request_logs as t; print(t.delay().get(timeout=60))",
            )
            assert result.returncode == 0, result.stderr[-2000:]
            time.sleep(0.5)
        assert rows() == total
    finally:
        web.stop()
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
