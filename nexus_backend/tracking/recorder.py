"""Request records, kept off the request path: in-process buffer -> Redis stream -> (flusher) PostgreSQL.

On the request path the middleware only appends a tuple to an in-process ``deque`` (a few microseconds, no I/O).
A daemon thread in each web process (the *tracking thread*) wakes every ``NEXUS_REQUEST_LOG_BUFFER_SECONDS``,
turns the buffered tuples into PostgreSQL ``COPY`` text lines and appends them to a Redis stream, many records
per stream entry, in one round trip. The flusher (``flusher.py``: a Celery beat task, or
``manage.py flush_request_logs``) moves them into ``RequestLog`` with ``COPY`` and deletes them from the stream
only after the database commit.

Every record carries a ``request_id`` made here (a random per-process prefix + a counter), unique in the table:
anything delivered twice (a retry after an ambiguous failure, a spool file replayed after a crash) is inserted
once. Delivery is at-least-once, storage exactly-once.

When Redis does not answer, the thread appends the lines to a spool file under ``NEXUS_REQUEST_LOG_SPOOL_DIR``
(one file per process, locked while written) and keeps answering nothing to nobody: the request path never
waits. Once Redis answers again, any process's tracking thread (or the flusher) replays unlocked spool files
into the stream and deletes them. Records that cannot be kept at all (the spool is not writable, a corrupt
spool line) are counted in Redis (``…:lost``), logged at ERROR and shown by ``flush_request_logs --status``.

A graceful stop (gunicorn's SIGTERM, Ctrl-C, end of a notebook kernel) runs ``shutdown()`` through ``atexit``:
the buffer goes to Redis, or to the spool. What a crash (SIGKILL, power loss) can lose is the buffer of the
dead process: at most ``NEXUS_REQUEST_LOG_BUFFER_SECONDS`` of its requests.

The same thread polls the block list's version key (``blocklist.py``) every ``NEXUS_BLOCKLIST_REFRESH_SECONDS``.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import itertools
import logging
import os
import secrets
import threading
import time
from collections import Counter, deque
from pathlib import Path

import redis
from django.conf import settings

from .blocklist import BLOCKLIST
from .stream import (
    LIMITS,
    blocklist_version_key,
    escape,
    lost_key,
    new_redis_client,
    spool_dir,
    stream_key,
    valid_line,
)

logger = logging.getLogger(__name__)

RECORDS_PER_ENTRY = 1000
SPOOL_ROTATE_BYTES = 64 * 1024 * 1024
SPOOL_READ_LINES = 5000


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ------------------------------------------------------------------------------------------- the recorder


class Recorder:
    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        """Fresh state: at import, and in a forked child (gunicorn workers) which must not share the parent's."""
        self.buffer: deque = deque()
        self._start_lock = threading.Lock()
        self._seq = itertools.count(1)
        self._prefix = secrets.token_hex(8)
        self._started = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._push_lock = threading.RLock()
        self._client: redis.Redis | None = None
        self._down_until = 0.0
        self._failures = 0
        self._spool_file = None
        self._spool_path: Path | None = None
        self._spool_check_due = 0.0
        self._lost_unreported = 0
        self._blocklist_due = 0.0
        self._atexit = False
        self.stats: Counter[str] = Counter()
        self.keys_written: set[str] = set()

    # ----------------------------------------------------------------- request path
    def record(
        self,
        ip: str | None,
        method: str,
        path: str,
        status: int,
        started: float,
        duration: float,
        user_id: int | None,
        user_agent: str,
        referrer: str,
    ) -> None:
        """Called by the middleware once per request: one ``deque.append``, nothing else."""
        self.buffer.append(
            (next(self._seq), started, ip, method, path, status, duration, user_id, user_agent, referrer)
        )
        if not self._started:
            self.start()

    def start(self) -> None:
        with self._start_lock:
            if self._started:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="nexus-tracking", daemon=True)
            self._thread.start()
            self._started = True
            if not self._atexit:
                atexit.register(self.shutdown)
                self._atexit = True

    @property
    def running(self) -> bool:
        return self._started

    # ----------------------------------------------------------------- the tracking thread
    def _run(self) -> None:
        interval = settings.NEXUS_REQUEST_LOG_BUFFER_SECONDS
        while not self._stop.wait(interval):
            try:
                self.flush_buffer()
                self.poll_blocklist()
            except Exception:  # the thread must outlive any surprise; the buffer is kept for the next tick
                logger.exception("request log: the tracking thread failed; retrying")

    def poll_blocklist(self, *, force: bool = False) -> None:
        """Tell the block list which version Redis holds (a change elsewhere makes it reload)."""
        now = time.monotonic()
        if not force and (now < self._blocklist_due or now < self._down_until):
            return
        self._blocklist_due = now + settings.NEXUS_BLOCKLIST_REFRESH_SECONDS
        try:
            raw = self.client().get(blocklist_version_key())
        except (redis.RedisError, OSError) as exc:
            self.redis_failed(exc)
            return
        BLOCKLIST.version_seen(int(raw) if raw is not None else None)

    # ----------------------------------------------------------------- buffer -> Redis (or spool)
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = new_redis_client()
        return self._client

    def _line(self, rec: tuple) -> str:
        seq, started, ip, method, path, status, duration, user_id, user_agent, referrer = rec
        return "\t".join(
            (
                f"{self._prefix}{seq:016x}",
                repr(started),
                ip or "\\N",
                escape(method, LIMITS["method"]),
                escape(path, LIMITS["path"]),
                str(status),
                f"{duration * 1000:.3f}",
                "\\N" if user_id is None else str(int(user_id)),
                escape(user_agent, LIMITS["user_agent"]),
                escape(referrer, LIMITS["referrer"]),
            )
        )

    def flush_buffer(self) -> int:
        """Move everything buffered to Redis (or the spool); replay spool files when Redis answers."""
        with self._push_lock:
            lines = []
            pop = self.buffer.popleft
            while True:
                try:
                    record = pop()
                except IndexError:
                    break
                try:
                    lines.append(self._line(record))
                except Exception as exc:  # a value the line format cannot hold: count it, keep the rest
                    self._lose(1, f"cannot serialise {record!r:.200} ({exc})")
            if lines:
                try:
                    self._push(lines)
                except Exception:
                    logger.exception("request log: could not hand over %d records; spooling them", len(lines))
                    self._spool(lines)
            self.report_lost()
            if self._spool_path is not None and time.monotonic() >= self._down_until:
                self._close_spool()  # Redis is back: our own spool file becomes replayable
            if time.monotonic() >= max(self._spool_check_due, self._down_until):
                self._spool_check_due = time.monotonic() + 5.0
                try:
                    self.replay_spool()
                except (redis.RedisError, OSError) as exc:
                    self.redis_failed(exc)
            return len(lines)

    def _push(self, lines: list[str]) -> None:
        if time.monotonic() < self._down_until:
            self._spool(lines)
            return
        try:
            self.xadd(lines)
        except (redis.RedisError, OSError) as exc:
            self.redis_failed(exc)
            self._spool(lines)  # some entries may have gone in: request_id makes the replay harmless
            return
        self.stats["pushed"] += len(lines)
        if self._failures:
            logger.warning("request log: Redis answers again; records flow to the stream")
            self._failures = 0
            self._spool_check_due = 0.0

    def xadd(self, lines: list[str], client: redis.Redis | None = None) -> None:
        key = stream_key()
        pipe = (client or self.client()).pipeline(transaction=False)
        for chunk in _chunks(lines, RECORDS_PER_ENTRY):
            pipe.xadd(key, {"n": len(chunk), "b": "\n".join(chunk)})
        pipe.execute()
        self.keys_written.add(key)

    def redis_down(self) -> bool:
        """Did Redis fail a moment ago? (Callers skip it until the backoff ends instead of waiting on it.)"""
        return time.monotonic() < self._down_until

    def redis_failed(self, exc: Exception) -> None:
        self._failures += 1
        backoff = min(5.0, 0.25 * 2 ** min(self._failures, 5))
        self._down_until = time.monotonic() + backoff
        if self._failures == 1:
            logger.warning("request log: Redis does not answer (%s); spooling to %s", exc, spool_dir())

    # ----------------------------------------------------------------- spool
    def _spool(self, lines: list[str]) -> None:
        try:
            handle = self._open_spool()
            handle.write("\n".join(lines) + "\n")
            handle.flush()
            self.stats["spooled"] += len(lines)
            if handle.tell() >= SPOOL_ROTATE_BYTES:
                self._close_spool()
        except OSError as exc:
            self._lose(len(lines), f"Redis is down and the spool is not writable ({exc})")

    def _open_spool(self):
        if self._spool_file is None:
            folder = spool_dir()
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{time.time_ns()}-{os.getpid()}-{self._prefix[:8]}.spool"
            # Made under a name replayers do not look at, locked, then renamed (the lock stays): a replayer never
            # sees the file unlocked and empty, which it would delete before the first line went in.
            creating = path.with_name(path.name + "-new")
            handle = open(creating, "a", encoding="utf-8")
            fcntl.flock(handle, fcntl.LOCK_EX)  # replayers skip a file while its writer holds it
            os.rename(creating, path)
            self._spool_file, self._spool_path = handle, path
        return self._spool_file

    def _close_spool(self) -> None:
        if self._spool_file is not None:
            with contextlib.suppress(OSError):
                self._spool_file.close()
        self._spool_file = self._spool_path = None

    def replay_spool(self, client: redis.Redis | None = None) -> tuple[int, int]:
        """Push every spool file nobody holds into the stream, then delete it. Returns (pushed, lost) records."""
        folder = spool_dir()
        if not folder.is_dir():
            return 0, 0
        with self._push_lock:  # one replay at a time in this process (the tracking thread, the flusher)
            return self._replay(folder, client)

    def _replay(self, folder: Path, client: redis.Redis | None) -> tuple[int, int]:
        pushed = lost = 0
        for path in sorted(folder.glob("*.spool")):
            if path == self._spool_path:
                continue
            try:
                handle = open(path, encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue
            with handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # being written, or replayed by another process
                try:
                    if os.fstat(handle.fileno()).st_ino != os.stat(path).st_ino:
                        continue  # replayed and deleted by someone else meanwhile
                except FileNotFoundError:
                    continue
                bad = 0
                batch: list[str] = []
                for raw in handle:
                    line = raw.rstrip("\n")
                    if not line:
                        continue
                    if not valid_line(line):
                        bad += 1
                        continue
                    batch.append(line)
                    if len(batch) >= SPOOL_READ_LINES:
                        self.xadd(batch, client)
                        pushed += len(batch)
                        batch = []
                if batch:
                    self.xadd(batch, client)
                    pushed += len(batch)
                if bad:
                    self._lose(bad, f"{bad} unreadable line(s) in {path.name} (a crash while writing it)")
                    lost += bad
                path.unlink()
        if pushed:
            self.stats["replayed"] += pushed
            logger.warning("request log: replayed %d spooled records into the stream", pushed)
        if lost:
            self.report_lost(client)
        return pushed, lost

    # ----------------------------------------------------------------- losses are counted, never silent
    def _lose(self, count: int, why: str) -> None:
        self.stats["lost"] += count
        self._lost_unreported += count
        logger.error("request log: %d record(s) lost: %s", count, why)

    def report_lost(self, client: redis.Redis | None = None) -> None:
        """Add the losses not yet reported to the counter in Redis (kept for later if Redis is down)."""
        if not self._lost_unreported or (client is None and time.monotonic() < self._down_until):
            return
        try:
            (client or self.client()).incrby(lost_key(), self._lost_unreported)
            self._lost_unreported = 0
        except (redis.RedisError, OSError) as exc:
            self.redis_failed(exc)

    # ----------------------------------------------------------------- stop
    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the thread and hand over what is buffered (to Redis, or the spool). Safe to call twice."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)
        self._down_until = min(self._down_until, time.monotonic())  # one last try at Redis
        with self._push_lock:
            try:
                self.flush_buffer()  # to Redis, or to the spool when Redis does not answer
            except Exception:
                logger.exception("request log: the last hand-over failed")
            self._close_spool()
        self._started = False
        self._thread = None


RECORDER = Recorder()
