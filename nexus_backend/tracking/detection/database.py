"""The hourly task's input: ``RequestLog`` rows of a window reduced by one ``GROUP BY`` and classified."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from django.db import connection, transaction

from .aggregate import Aggregator
from .parsers import no_gc
from .rules import RuleSet

WORK_MEM = "64MB"
# date_part is float8 arithmetic where extract (PostgreSQL 14+) is numeric: the same values (a timestamp's
# microseconds are exact in a float8 and each result is correctly rounded), ~15% less time for the whole statement
# with grouping by the inet itself (host() then runs once per group, not per row).
GROUPS_SQL = """
SELECT (floor(date_part('epoch', timestamp) / %(w)s) * %(w)s)::bigint, host(ip_address), method, path, status_code,
       user_agent, referrer, count(*), date_part('epoch', min(timestamp)), date_part('epoch', max(timestamp))
FROM tracking_requestlog
WHERE timestamp >= %(start)s AND timestamp < %(end)s AND ip_address IS NOT NULL
GROUP BY 1, ip_address, 3, 4, 5, 6, 7
"""
# Failed logins that named an account (the request log records it: ``accounts/api.py``). Few rows, found through the
# timestamp index; the login paths are matched in Python with the rules' own patterns.
ACCOUNT_FAILURES_SQL = """
SELECT (floor(date_part('epoch', timestamp) / %(w)s) * %(w)s)::bigint, host(ip_address), path, user_id
FROM tracking_requestlog
WHERE timestamp >= %(start)s AND timestamp < %(end)s AND ip_address IS NOT NULL AND user_id IS NOT NULL
  AND method = 'POST' AND status_code = ANY(%(statuses)s)
"""


SLICES = 4  # the window is read in time slices: the server groups the next one while Python classifies this one


def aggregate_request_log(*, start: datetime, end: datetime, rules: RuleSet) -> Aggregator:
    """``RequestLog`` rows in ``[start, end)`` reduced by ``GROUP BY`` and classified: no per-row work in SQL beyond
    the scan, no per-IP query.

    The window is read in ``SLICES`` consecutive time slices, each grouped by the same statement: a group cut in two
    by a slice boundary is handed over twice, and an aggregate adds the halves up as it adds identical requests
    (counts add, first and last by min and max). While one slice is classified here, the next runs in the server
    (a thread waits for it on the same connection and transaction; psycopg releases the GIL while it waits)."""
    aggregator = Aggregator(rules)
    add = aggregator.add_group
    bounds = [start + (end - start) * i / SLICES for i in range(SLICES)] + [end]
    # The epoch seconds come as float8, not numeric: psycopg turns numeric into Decimal, ~4x slower to read, and
    # float8 holds the same double ``float(Decimal)`` would give. work_mem for these statements lets the GROUP BY
    # of a busy hour (100k rows) hash in memory instead of sorting through temporary files.
    with transaction.atomic(), connection.cursor() as cur, no_gc():
        cur.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        raw = connection.connection  # psycopg's own connection: one statement at a time, from either thread

        def grouped(i: int) -> list[tuple]:
            with raw.cursor() as slice_cursor:
                slice_cursor.execute(GROUPS_SQL, {"w": rules.window_seconds, "start": bounds[i], "end": bounds[i + 1]})
                return slice_cursor.fetchall()

        with ThreadPoolExecutor(1) as reader:
            pending = reader.submit(grouped, 0)
            for i in range(SLICES):
                rows = pending.result()
                if i + 1 < SLICES:
                    pending = reader.submit(grouped, i + 1)
                for row in rows:  # (window, ip, method, path, status, agent, referrer, count, first, last)
                    add(*row)
    return aggregator


def account_failures(*, start: datetime, end: datetime, aggregator: Aggregator) -> dict[tuple[int, str], tuple]:
    """For each (window, address group) whose failed logins named an account: ``(addresses, account)``, the most
    address groups that failed on one of those accounts in that window, and that account's id (rule
    ``account_campaign``: one account guessed from many addresses). Empty where nothing names accounts."""
    statuses = sorted(aggregator.rules.data["rules"]["auth_failures"]["statuses"])
    on_account: dict[tuple[int, int], set[str]] = {}
    with connection.cursor() as cur:
        cur.execute(ACCOUNT_FAILURES_SQL, {"w": aggregator.rules.window_seconds, "start": start, "end": end,
                                           "statuses": statuses})  # fmt: skip
        for w, ip, path, account in cur.fetchall():
            if aggregator.path_class(path).auth:
                on_account.setdefault((w, account), set()).add(aggregator.group(ip))
    out: dict[tuple[int, str], tuple] = {}
    for (w, account), groups in sorted(on_account.items()):
        for group in groups:
            if len(groups) > out.get((w, group), (0,))[0]:
                out[(w, group)] = (len(groups), account)
    return out
