"""The flusher: Redis stream -> ``RequestLog``, in batches, with ``COPY``; entries are deleted only after commit.

One pass (``flush``):

1. replay spool files left by processes that could not reach Redis (``recorder.replay_spool``);
2. read up to ``max_entries`` stream entries (each holds up to 1,000 records as ``COPY`` text lines);
3. in one transaction: take an advisory lock (two flushers never do the same work twice), ``COPY`` the lines
   into a temporary table, ``INSERT … SELECT … ON CONFLICT (request_id) DO NOTHING`` into ``RequestLog``;
4. commit, then ``XDEL`` the entries.

A crash before the commit leaves the entries in the stream (read again next time); a crash between the commit
and the ``XDEL`` makes the next pass read them again, and ``request_id`` makes that second insert a no-op.
A batch the database refuses (it should not happen: the lines are made by ``recorder``) is split until the
offending record is found; that record is counted as lost and logged, the others are kept.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import asdict, dataclass
from typing import cast

import psycopg2
import redis
from django.db import DataError, connection, transaction

from nexus_backend.core.faults import pause_point

from .recorder import RECORDER
from .stream import lost_key, new_redis_client, spool_dir, stream_key

logger = logging.getLogger(__name__)

# What XRANGE answers on a client without decode_responses (redis-py types it loosely): (id, {field: value}).
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]

ADVISORY_LOCK = 0x4E5855_5452_4B  # "NXU" "TRK": one flusher at a time per database
INCOMING = "tracking_requestlog_incoming"
COLUMNS = "request_id, ts, ip, method, path, status, duration_ms, user_id, user_agent, referrer"
CREATE_INCOMING = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {INCOMING} (
    request_id uuid, ts double precision, ip inet, method text, path text, status integer,
    duration_ms double precision, user_id bigint, user_agent text, referrer text
)"""
INSERT = f"""
INSERT INTO tracking_requestlog
    (request_id, timestamp, ip_address, method, path, status_code, duration_ms, user_id, user_agent, referrer)
SELECT request_id, to_timestamp(ts), ip, method, path, status, duration_ms, user_id, user_agent, referrer
FROM {INCOMING}
ON CONFLICT (request_id) DO NOTHING"""
DATA_ERRORS = (DataError, psycopg2.DataError, psycopg2.IntegrityError)


@dataclass
class FlushResult:
    entries: int = 0
    records: int = 0
    inserted: int = 0
    duplicates: int = 0
    lost: int = 0
    replayed: int = 0
    busy: bool = False  # another flusher held the lock

    def add(self, other: FlushResult) -> None:
        for name in ("entries", "records", "inserted", "duplicates", "lost", "replayed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.busy = self.busy or other.busy

    def as_dict(self) -> dict:
        return asdict(self)


class _Busy(Exception):
    pass


def _copy_and_insert(lines: list[str]) -> int:
    """One transaction: lock, COPY into the temporary table, insert what is new. Returns rows inserted."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [ADVISORY_LOCK])
        if not cur.fetchone()[0]:
            raise _Busy
        cur.execute(CREATE_INCOMING)
        cur.execute(f"TRUNCATE {INCOMING}")
        cur.copy_expert(f"COPY {INCOMING} ({COLUMNS}) FROM STDIN", io.StringIO("\n".join(lines) + "\n"))
        cur.execute(INSERT)
        return cur.rowcount


def _store(lines: list[str], result: FlushResult) -> None:
    """Insert ``lines``; on a data error, split until the bad lines are isolated (and counted as lost)."""
    try:
        result.inserted += _copy_and_insert(lines)
        return
    except DATA_ERRORS as exc:
        if len(lines) == 1:
            result.lost += 1
            logger.error("request log: a record was refused by the database and dropped (%s): %.300r", exc, lines[0])
            return
    middle = len(lines) // 2
    _store(lines[:middle], result)
    _store(lines[middle:], result)


_clients: dict[int, redis.Redis] = {}


def _client() -> redis.Redis:
    """One client per process (the Celery task runs every few seconds: no new connection each time)."""
    pid = os.getpid()
    if pid not in _clients:
        _clients.clear()
        _clients[pid] = new_redis_client()
    return _clients[pid]


def flush_batch(*, client: redis.Redis | None = None, max_entries: int = 20) -> FlushResult:
    """Move at most ``max_entries`` stream entries into the database."""
    client = client or _client()
    key = stream_key()
    result = FlushResult()
    entries = cast(StreamEntries, client.xrange(key, "-", "+", count=max_entries))
    if not entries:
        return result
    ids: list[bytes] = []
    lines: list[str] = []
    for entry_id, fields in entries:
        ids.append(entry_id)
        body = fields.get(b"b", b"").decode("utf-8", errors="replace")
        lines.extend(line for line in body.split("\n") if line)
    try:
        _store(lines, result)
    except _Busy:
        return FlushResult(busy=True)
    result.entries, result.records = len(ids), len(lines)
    result.duplicates = result.records - result.inserted - result.lost
    pause_point("flush-after-commit")  # tests/faults: a worker killed here must lose nothing and double nothing
    client.xdel(key, *ids)
    if result.lost:
        client.incrby(lost_key(), result.lost)
    return result


def flush(*, max_batches: int | None = None, max_entries: int = 20) -> FlushResult:
    """Replay spool files, then flush batches until the stream is empty (or ``max_batches`` were done)."""
    client = _client()
    total = FlushResult()
    total.replayed, total.lost = RECORDER.replay_spool(client)
    batches = 0
    while max_batches is None or batches < max_batches:
        result = flush_batch(client=client, max_entries=max_entries)
        total.add(result)
        batches += 1
        if result.busy or result.entries < max_entries:
            break
    if total.records:
        logger.info("request log: flushed %s", total.as_dict())
    return total


def status() -> dict:
    """What is waiting where, and what was lost: for ``flush_request_logs --status`` and people."""
    client = new_redis_client()
    key = stream_key()
    waiting = 0
    last: str | bytes = "-"
    while True:
        entries = cast(StreamEntries, client.xrange(key, last, "+", count=500))
        if last != "-":
            entries = entries[1:]
        if not entries:
            break
        waiting += sum(int(fields.get(b"n", b"0")) for _, fields in entries)
        last = entries[-1][0]
    folder = spool_dir()
    files = sorted(folder.glob("*.spool")) if folder.is_dir() else []
    spooled = 0
    for path in files:
        with open(path, "rb") as handle:
            spooled += sum(1 for line in handle if line.strip())
    return {
        "stream": key,
        "stream_entries": client.xlen(key),
        "records_waiting_in_stream": waiting,
        "spool_dir": str(folder),
        "spool_files": len(files),
        "records_waiting_in_spool": spooled,
        "records_lost": int(client.get(lost_key()) or 0),
    }
