"""``manage.py flush_request_logs``: move buffered request logs into PostgreSQL (what the beat task does).

manage.py flush_request_logs            # one drain: spool files, then the stream until it is empty
manage.py flush_request_logs --loop     # a flusher process: drain every --interval seconds until stopped
manage.py flush_request_logs --status   # what waits in the stream and the spool, what was lost
"""

from __future__ import annotations

import json
import signal
import threading

import redis
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, close_old_connections

from nexus_backend.tracking import flusher


class Command(BaseCommand):
    help = "Flush request logs from the Redis stream (and spool files) into RequestLog with COPY."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep flushing until SIGTERM or Ctrl-C")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between passes with --loop")
        parser.add_argument("--status", action="store_true", help="print what is waiting and what was lost (JSON)")
        parser.add_argument("--max-batches", type=int, default=None, help="stop a pass after this many batches")

    def handle(self, *args, loop, interval, status, max_batches, **options):
        if status:
            try:
                self.stdout.write(json.dumps(flusher.status(), indent=2))
            except (redis.RedisError, OSError) as exc:
                raise CommandError(f"cannot read the request-log stream: Redis does not answer ({exc})") from None
            return
        if not loop:
            try:
                result = flusher.flush(max_batches=max_batches)
            except (redis.RedisError, OSError) as exc:
                raise CommandError(f"Redis does not answer ({exc}); nothing was flushed, nothing was lost") from None
            self.stdout.write(json.dumps(result.as_dict()))
            return
        self._loop(interval, max_batches)

    def _loop(self, interval: float, max_batches: int | None) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"flushing request logs every {interval:g} s; SIGTERM or Ctrl-C stops after a last pass")
        failing = False
        while True:
            last = stop.is_set()
            try:
                close_old_connections()
                flusher.flush(max_batches=max_batches)
                if failing:
                    self.stdout.write("flushing again")
                failing = False
            except (redis.RedisError, OSError, OperationalError) as exc:
                if not failing:
                    self.stderr.write(f"cannot flush now ({type(exc).__name__}: {exc}); retrying, nothing is lost")
                failing = True
            if last:
                break
            stop.wait(interval)
        self.stdout.write("stopped")
