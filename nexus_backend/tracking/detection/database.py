"""The hourly task's input: ``RequestLog`` rows of a window reduced by one ``GROUP BY`` and classified."""

from __future__ import annotations

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


def aggregate_request_log(*, start: datetime, end: datetime, rules: RuleSet) -> Aggregator:
    """``RequestLog`` rows in ``[start, end)`` reduced by one ``GROUP BY`` and classified: no per-row work in SQL
    beyond the scan, no per-IP query."""
    aggregator = Aggregator(rules)
    add = aggregator.add_group
    # The epoch seconds come as float8, not numeric: psycopg turns numeric into Decimal, ~4x slower to read, and
    # float8 holds the same double ``float(Decimal)`` would give. work_mem for this one statement lets the GROUP
    # BY of a busy hour (100k rows) hash in memory instead of sorting through temporary files.
    with transaction.atomic(), connection.cursor() as cur, no_gc():
        cur.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        cur.execute(GROUPS_SQL, {"w": rules.window_seconds, "start": start, "end": end})
        while True:
            rows = cur.fetchmany(20_000)
            if not rows:
                break
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
