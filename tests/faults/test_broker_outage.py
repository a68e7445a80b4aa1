"""RabbitMQ stopped: the API keeps answering; tasks enqueued meanwhile are delivered once it is back.

Against real servers: a RabbitMQ node of the test's own (never the shared one), gunicorn (2 workers) and a real
Celery worker. While the node is down the API answers every request, including writes whose task (``close_poll``
at the poll's expiry) cannot reach the broker: the task waits in the outbox (``nexus_backend/core/outbox.py``).
Once the node is back, a worker starts, relays the outbox, and each of those tasks runs exactly once. The request
log does not go through the broker (web -> Redis stream -> COPY): a flush task delivered through the restarted
node brings every request into ``RequestLog``."""

from __future__ import annotations

import http.client
import json
import os
import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from kombu import Connection

from nexus_backend.core.models import OutboxMessage
from nexus_backend.polls.models import Poll
from nexus_backend.tracking.models import RequestLog
from nexus_backend.tracking.tasks import flush_request_logs
from tests.conftest import bearer

from .harness import AGENT, ROOT, Gunicorn, Worker, get, load, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services, pytest.mark.timeout(300)]

POLLS_DURING_OUTAGE = 3


def _create_poll(port: int, user, question: str, expires_at) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        body = {"question": question, "options": ["yes", "no"], "expires_at": expires_at.isoformat()}
        headers = {"User-Agent": AGENT, "Content-Type": "application/json", "Authorization": bearer(user)}
        conn.request("POST", "/api/polls/", body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_broker_stopped_then_restarted_loses_no_task(rabbit, tmp_path):
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
    worker = Worker(env=env, log=tmp_path / "worker.log")
    web.start()
    try:
        web.wait_healthy()
        before = load(web.port, 100)

        rabbit.stop()
        during = load(web.port, 100)
        # Writes whose task (close_poll at expiry) is enqueued on commit: the broker is down, the API answers.
        expires = timezone.now() + timedelta(seconds=8)  # due after the broker is back
        created = [_create_poll(web.port, user, f"Broker down {i}?", expires) for i in range(POLLS_DURING_OUTAGE)]
        during += load(web.port, 100)
        assert get(web.port, "/health/") == 503  # health says the broker is down, and still answers
        assert [status for status, _ in created] == [201] * POLLS_DURING_OUTAGE
        poll_ids = [body["id"] for _, body in created]
        waiting = OutboxMessage.objects.filter(task="nexus_backend.polls.tasks.close_poll", sent_at__isnull=True)
        assert sorted(m.args[0] for m in waiting) == sorted(poll_ids)  # kept in the outbox, not lost
        assert all(m.attempts == 1 and m.last_error for m in waiting)

        rabbit.start()
        after = load(web.port, 100)
        assert before == [200] * 100 and during == [200] * 200 and after == [200] * 100

        # A worker starts (no beat runs here: only the outbox can close these polls), relays the outbox at
        # startup, and each close_poll runs once at its eta.
        worker.start()
        worker.wait_ready()
        wait_for(
            lambda: Poll.objects.filter(pk__in=poll_ids, is_closed=True).count() == POLLS_DURING_OUTAGE,
            60,
            f"the polls to be closed by close_poll\n{worker.tail()}",
        )
        messages = list(OutboxMessage.objects.filter(args__0__in=poll_ids))
        assert len(messages) == POLLS_DURING_OUTAGE and all(m.sent_at for m in messages)
        time.sleep(1.0)  # a duplicate delivery would show up in the log now
        log = worker.text()
        for message in messages:
            runs = re.findall(rf"close_poll\[{message.task_id}\] succeeded in [0-9.e-]+s: (\w+)", log)
            assert runs == ["True"], f"close_poll for poll {message.args[0]} ran {len(runs)} times: {runs}"

        # The request log: a flush task delivered through the restarted broker brings every request in.
        total = 100 + 200 + POLLS_DURING_OUTAGE + 1 + 100  # GETs, the POSTs and the /health/ probe
        rows = lambda: RequestLog.objects.filter(user_agent=AGENT).count()  # noqa: E731
        deadline = time.monotonic() + 60
        with Connection(rabbit.url) as broker:
            while rows() < total and time.monotonic() < deadline:
                flush_request_logs.apply_async(connection=broker).get(timeout=30)
                time.sleep(0.3)
        assert rows() == total
    finally:
        web.stop()
        worker.stop()
