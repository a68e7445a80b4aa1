"""A worker killed with SIGKILL mid-task: the task is delivered again and its effect applied exactly once.

The task is the request-log flush (Redis stream -> ``COPY`` into ``RequestLog`` -> commit -> ``XDEL``), whose
effect a naive redelivery would double. A real worker over a RabbitMQ node of the test's own is stopped by a
fault-injection point (``NEXUS_FAULT_PAUSE_AT=flush-after-commit``, nexus_backend/core/faults.py) at the worst
moment: the rows are committed, the stream entries not yet deleted, the message not yet acknowledged. Then:

1. the pool child running the task is SIGKILLed: ``reject_on_worker_lost`` puts the message back in the queue and
   the worker's next child runs it again;
2. the whole worker (main process and child) is SIGKILLed: RabbitMQ requeues the unacknowledged message and a new
   worker runs it.

Each time the second run finds every record already stored (``request_id`` is unique; the flush inserts with
``ON CONFLICT DO NOTHING``), so every request is in ``RequestLog`` exactly once and the stream ends empty."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.db import connection
from kombu import Connection

from nexus_backend.tracking.models import RequestLog
from nexus_backend.tracking.recorder import RECORDER
from nexus_backend.tracking.stream import stream_key
from nexus_backend.tracking.tasks import flush_request_logs

from .harness import Worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services, pytest.mark.timeout(300)]

RECORDS = 2500  # three stream entries (1,000 records each at most), flushed in one transaction


def _record(count: int, agent: str) -> None:
    """``count`` requests, recorded the way the middleware records them, handed over to the Redis stream."""
    now = time.time()
    for i in range(count):
        RECORDER.record("203.0.113.9", "GET", f"/faults/{i}", 200, now, 0.001, None, agent, "")
    RECORDER.flush_buffer()


def _rows(agent: str) -> int:
    return RequestLog.objects.filter(user_agent=agent).count()


def _stream_entries() -> int:
    return RECORDER.client().xlen(stream_key())


def _flush_and_wait_for_pause(broker_url: str, pidfile) -> tuple[object, int]:
    """Send one flush task; return its result handle and the pid of the process paused after the commit."""
    with Connection(broker_url) as broker:
        result = flush_request_logs.apply_async(connection=broker)
    pid = wait_for(lambda: pidfile.exists() and pidfile.read_text(), 60, "the flush to pause after its commit")
    return result, int(pid)


def test_worker_killed_mid_task_redelivers_and_applies_once(rabbit, tmp_path):
    env = dict(
        os.environ,
        CELERY_BROKER_URL=rabbit.url,
        NEXUS_DB_NAME=connection.settings_dict["NAME"],
        NEXUS_FAULT_PAUSE_AT="flush-after-commit",
    )
    clean_env = {k: v for k, v in env.items() if not k.startswith("NEXUS_FAULT_")}
    workers: list[Worker] = []

    def worker(name: str, **extra: str) -> Worker:
        started = Worker(env={**env, **extra} if extra else clean_env, log=tmp_path / f"{name}.log", name=name)
        workers.append(started.start())
        started.wait_ready()
        return started

    try:
        # 1. SIGKILL the pool child that runs the task.
        first = worker("first", NEXUS_FAULT_PIDFILE=str(tmp_path / "paused-child.pid"))
        _record(RECORDS, "faults-child-killed")
        result, child = _flush_and_wait_for_pause(rabbit.url, tmp_path / "paused-child.pid")
        assert child != first.proc.pid
        assert _rows("faults-child-killed") == RECORDS and _stream_entries() == 3  # committed, not yet deleted
        os.kill(child, signal.SIGKILL)
        again = result.get(timeout=90)  # the same task, delivered again to the worker's next child
        assert again["inserted"] == 0 and again["duplicates"] == RECORDS and again["lost"] == 0, again
        assert _rows("faults-child-killed") == RECORDS and _stream_entries() == 0
        assert "WorkerLostError" in first.text() or "exited prematurely" in first.text(), first.tail()
        first.stop()

        # 2. SIGKILL the whole worker (main process and child); a new worker gets the message back.
        second = worker("second", NEXUS_FAULT_PIDFILE=str(tmp_path / "paused-worker.pid"))
        _record(RECORDS, "faults-worker-killed")
        result, _ = _flush_and_wait_for_pause(rabbit.url, tmp_path / "paused-worker.pid")
        assert _rows("faults-worker-killed") == RECORDS and _stream_entries() == 3
        second.kill()
        worker("third")  # no fault injection
        again = result.get(timeout=90)
        assert again["inserted"] == 0 and again["duplicates"] == RECORDS and again["lost"] == 0, again
        assert _rows("faults-worker-killed") == RECORDS and _stream_entries() == 0
    finally:
        for started in workers:
            started.stop()
