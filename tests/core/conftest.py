"""A real Celery worker for the logs-and-metrics tests: its own queue on the configured broker (RabbitMQ here and in
CI), JSON logs written to a file the test reads, and the test-only tasks of ``tests/core/celery_tasks.py``."""

from __future__ import annotations

import os
import time

import pytest
from django.db import connection

from tests.celery_worker import Worker, default_queue, new_queue


class JsonWorker(Worker):
    """A :class:`~tests.celery_worker.Worker` whose log records are JSON (``NEXUS_LOG_FORMAT=json``)."""

    def wait_for_record(self, predicate, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.records():
                if predicate(record):
                    return record
            assert self.proc.poll() is None, f"the worker exited:\n{self.text()[-3000:]}"
            time.sleep(0.25)
        raise AssertionError(f"no matching worker log record within {timeout} s:\n{self.text()[-3000:]}")


@pytest.fixture
def json_worker(tmp_path):
    """``celery worker`` (solo pool) on a queue of its own, with ``NEXUS_LOG_FORMAT=json`` and ``-l info``."""
    # Its own log settings, whatever this process inherited (the notebook bootstrap sets NEXUS_LOG_LEVEL=WARNING).
    env = dict(
        os.environ,
        NEXUS_DB_NAME=connection.settings_dict["NAME"],
        NEXUS_LOG_FORMAT="json",
        NEXUS_LOG_LEVEL="INFO",
        LOG_LEVEL="WARNING",
    )
    worker = JsonWorker(
        log=tmp_path / "worker.log", env=env, queue=new_queue(), pool="solo", include=["tests.core.celery_tasks"]
    )
    with worker.running(), default_queue(worker.queue):
        yield worker
