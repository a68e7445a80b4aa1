"""A real Celery worker for the logs-and-metrics tests: its own queue on the configured broker (RabbitMQ here and in
CI), JSON logs written to a file the test reads, and the test-only tasks of ``tests/core/celery_tasks.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from nexus_backend.celery import app

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Worker:
    queue: str
    log: Path
    proc: subprocess.Popen

    def records(self) -> list[dict]:
        """The JSON log records the worker wrote so far (its start-up banner is not JSON and is skipped)."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    pass
        return found

    def wait_for_record(self, predicate, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.records():
                if predicate(record):
                    return record
            assert self.proc.poll() is None, f"the worker exited:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.25)
        raise AssertionError(f"no matching worker log record within {timeout} s:\n{self.log.read_text()[-3000:]}")


@pytest.fixture
def json_worker(tmp_path):
    """``celery worker`` (solo pool) on a queue of its own, with ``NEXUS_LOG_FORMAT=json`` and ``-l info``."""
    queue = f"nexus-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    # Its own log settings, whatever this process inherited (the notebook bootstrap sets NEXUS_LOG_LEVEL=WARNING).
    env = dict(
        os.environ,
        NEXUS_DB_NAME=connection.settings_dict["NAME"],
        NEXUS_LOG_FORMAT="json",
        NEXUS_LOG_LEVEL="INFO",
        LOG_LEVEL="WARNING",
    )
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "nexus_backend",
                "worker",
                "-Q",
                queue,
                "--include",
                "tests.core.celery_tasks",
                "--pool",
                "solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "info",
                "-n",
                f"{queue}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    old_default = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    worker = Worker(queue=queue, log=log, proc=proc)
    try:
        worker.wait_for_record(lambda r: str(r.get("message", "")).endswith(" ready."), timeout=60)
        yield worker
    finally:
        app.conf.task_default_queue = old_default
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
