"""A real ``celery -A nexus_backend worker`` subprocess, for the tests that need one.

Used by the ``json_worker`` fixture (tests/core/conftest.py), the ``worker_queue`` fixture
(tests/polls/test_tasks_worker.py) and the fault tests (tests/faults/harness.py re-exports :class:`Worker`)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from nexus_backend.celery import app
from nexus_backend.core.benchmark import terminate

ROOT = Path(__file__).resolve().parents[1]


def new_queue() -> str:
    """A queue name of a test's own, so that no other worker takes its tasks."""
    return f"nexus-test-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def default_queue(queue: str) -> Iterator[None]:
    """Send this process's tasks to ``queue`` (``app.conf.task_default_queue``) for the duration of the block."""
    old = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        yield
    finally:
        app.conf.task_default_queue = old


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
        self.log = log
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
