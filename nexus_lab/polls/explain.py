"""Query plans for learners: ``EXPLAIN (ANALYZE, BUFFERS)`` of the real queries, with and without each index.

    from nexus_backend.polls import counting, selectors
    from nexus_lab.polls import explain
    plan = explain.explain(counting.COUNT, poll_id=42)               # the count strategy's own SQL
    plan = explain.explain(selectors.poll_list(active=True)[:20])    # any QuerySet: its SQL and parameters
    plans = explain.compare(counting.COUNT, poll_id=42, variants={"without": ["vote_poll_option_idx"]})
    print(plans["without"].text); plans["without"].scans()           # what PostgreSQL did, as data

Removing an index happens inside a transaction that is always rolled back: ``DROP INDEX`` (or ``ALTER TABLE ...
DROP CONSTRAINT`` for a unique constraint, with ``CASCADE`` for a foreign key that needs it), then the two
``EXPLAIN`` statements, then ``ROLLBACK``. The schema is never left changed; other sessions using the table wait
for those milliseconds (the drop holds the table's lock), so do not run this against a busy production database.

Claims about plans are checked on the plan (node types, index names, buffers), never on timings: timings depend
on the machine and on what else runs; the plan's shape does not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet

from nexus_backend.polls.counting import Strategy
from nexus_lab.polls import datagen

SCHEMA_TABLES = ("polls_poll", "polls_option", "polls_vote")

# pandas.read_sql(text(explain.CONSTRAINTS_SQL), engine, params={"tables": list(explain.SCHEMA_TABLES)})
CONSTRAINTS_SQL = """
SELECT c.conrelid::regclass::text AS "table",
       c.conname AS "constraint",
       CASE c.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' WHEN 'f' THEN 'foreign key'
                      WHEN 'c' THEN 'check' ELSE c.contype::text END AS kind,
       pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint c
WHERE c.conrelid::regclass::text = ANY(:tables)
ORDER BY array_position(:tables, c.conrelid::regclass::text), kind, c.conname
"""

INDEXES_SQL = """
SELECT i.indrelid::regclass::text AS "table",
       ix.relname AS "index",
       regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING ', '') AS "columns",
       i.indisunique AS "unique",
       pg_size_pretty(pg_relation_size(i.indexrelid)) AS size
FROM pg_index i
JOIN pg_class ix ON ix.oid = i.indexrelid
WHERE i.indrelid::regclass::text = ANY(:tables)
ORDER BY array_position(:tables, i.indrelid::regclass::text), ix.relname
"""

TRIGGERS_SQL = """
SELECT t.tgrelid::regclass::text AS "table", t.tgname AS "trigger", pg_get_triggerdef(t.oid) AS definition
FROM pg_trigger t
WHERE NOT t.tgisinternal AND t.tgrelid::regclass::text = ANY(:tables)
ORDER BY 1, 2
"""

TABLES_SQL = """
SELECT c.relname AS "table",
       CASE c.relkind WHEN 'r' THEN 'table' WHEN 'm' THEN 'materialized view' ELSE c.relkind::text END AS kind,
       c.reltuples::bigint AS estimated_rows,
       pg_size_pretty(pg_table_size(c.oid)) AS table_size,
       pg_size_pretty(pg_indexes_size(c.oid)) AS indexes_size
FROM pg_class c
WHERE c.relname = ANY(:tables)
ORDER BY array_position(:tables, c.relname::text)
"""


@dataclass
class Plan:
    """One executed plan: PostgreSQL's text, its JSON tree, and helpers to assert on its shape."""

    label: str
    sql: str
    params: list
    text: str
    tree: dict[str, Any]
    planning_ms: float
    execution_ms: float
    dropped: list[str] = field(default_factory=list)

    def nodes(self) -> list[dict[str, Any]]:
        """Every node of the plan, depth first (the root first)."""
        out, stack = [], [self.tree]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.get("Plans", [])))
        return out

    def node_types(self) -> list[str]:
        return [n["Node Type"] for n in self.nodes()]

    def scans(self) -> list[tuple[str, str, str | None]]:
        """``(node type, table, index or None)`` for every node that reads a table or an index."""
        return [
            (n["Node Type"], n["Relation Name"] if "Relation Name" in n else "", n.get("Index Name"))
            for n in self.nodes()
            if "Relation Name" in n or "Index Name" in n
        ]

    def indexes_used(self) -> set[str]:
        return {n["Index Name"] for n in self.nodes() if "Index Name" in n}

    def seq_scanned(self) -> set[str]:
        return {n["Relation Name"] for n in self.nodes() if n["Node Type"] == "Seq Scan"}

    def uses_index(self, name: str, *, only: bool = False) -> bool:
        """True when some node reads index ``name`` (``only=True``: with an Index Only Scan)."""
        kinds = ("Index Only Scan",) if only else ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
        return any(n.get("Index Name") == name and n["Node Type"] in kinds for n in self.nodes())

    @property
    def shared_buffers(self) -> int:
        """8 kB pages the whole plan touched (hit in cache + read from disk): the work, independent of timing."""
        return int(self.tree.get("Shared Hit Blocks", 0)) + int(self.tree.get("Shared Read Blocks", 0))

    @property
    def heap_fetches(self) -> int:
        return sum(int(n.get("Heap Fetches", 0)) for n in self.nodes())

    @property
    def rows(self) -> int:
        return int(self.tree.get("Actual Rows", 0))

    def summary(self) -> dict[str, Any]:
        scans = self.scans()
        return {
            "variant": self.label,
            "dropped": ", ".join(self.dropped) or "-",
            "plan": " > ".join(dict.fromkeys(self.node_types())),
            "reads": "; ".join(_describe_scan(*scan) for scan in scans),
            "rows": self.rows,
            "buffers": self.shared_buffers,
            "ms": round(self.execution_ms, 3),
        }


def _describe_scan(kind: str, table: str, index: str | None) -> str:
    return " ".join(part for part in (kind, f"on {table}" if table else "", f"using {index}" if index else "") if part)


def sql_and_params(query, params: Sequence | None = None, **kwargs) -> tuple[str, list]:
    """SQL and parameters of a QuerySet, a counting :class:`Strategy` (``poll_id=`` required) or plain SQL."""
    if isinstance(query, QuerySet):
        sql, qparams = query.query.sql_with_params()
        return sql, list(qparams)
    if isinstance(query, Strategy):
        return query.sql, query.params(kwargs["poll_id"])
    if isinstance(query, str):
        return query, list(params or [])
    raise TypeError(f"explain() takes a QuerySet, a counting Strategy or SQL text, not {type(query).__name__}")


def _drop_statements(cursor, names: Iterable[str]) -> list[str]:
    statements = []
    for name in names:
        cursor.execute(
            "SELECT conrelid::regclass::text FROM pg_constraint WHERE conname = %s AND contype IN ('u', 'p')",
            [name],
        )
        row = cursor.fetchone()
        if row:
            statements.append(f'ALTER TABLE {row[0]} DROP CONSTRAINT "{name}" CASCADE')
            continue
        cursor.execute("SELECT 1 FROM pg_class WHERE relname = %s AND relkind = 'i'", [name])
        if cursor.fetchone() is None:
            raise ValueError(f"no index or unique constraint called {name!r}")
        statements.append(f'DROP INDEX "{name}" CASCADE')
    return statements


class _Rollback(Exception):
    pass


def explain(
    query,
    params: Sequence | None = None,
    *,
    without: Sequence[str] = (),
    label: str = "",
    settings: Mapping[str, str] | None = None,
    **kwargs,
) -> Plan:
    """Run ``EXPLAIN (ANALYZE, BUFFERS)`` on ``query`` (QuerySet, Strategy with ``poll_id=``, or SQL), with the
    indexes/unique constraints named in ``without`` dropped for the duration of a transaction that is rolled
    back. ``settings`` are ``SET LOCAL`` planner settings for the experiment (e.g. ``{"jit": "off"}``)."""
    sql, qparams = sql_and_params(query, params, **kwargs)
    result: dict[str, Any] = {}
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # Inside a caller's transaction (a test), deferred foreign-key checks may be pending, and PostgreSQL
            # refuses ALTER TABLE until they have run: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for name, value in (settings or {}).items():
                cursor.execute("SELECT set_config(%s, %s, true)", [name, str(value)])
            for statement in _drop_statements(cursor, without):
                cursor.execute(statement)
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, qparams)
            result["text"] = "\n".join(r[0] for r in cursor.fetchall())
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, qparams)
            raw = cursor.fetchone()[0]
            result["json"] = json.loads(raw) if isinstance(raw, str) else raw
            raise _Rollback  # whatever was dropped comes back
    except _Rollback:
        pass
    top = result["json"][0]
    return Plan(
        label=label or ("without " + ", ".join(without) if without else "with every index"),
        sql=sql,
        params=qparams,
        text=result["text"],
        tree=top["Plan"],
        planning_ms=float(top.get("Planning Time", 0.0)),
        execution_ms=float(top.get("Execution Time", 0.0)),
        dropped=list(without),
    )


def compare(
    query, params: Sequence | None = None, *, variants: Mapping[str, Sequence[str]], vacuum: bool = True, **kwargs
) -> dict:
    """``{"with every index": Plan, <label>: Plan without those indexes, ...}`` for one query.

    ``vacuum`` (outside a transaction only) first runs ``VACUUM (ANALYZE, INDEX_CLEANUP ON)`` on the poll tables
    (:func:`datagen.refresh_statistics`: why the index pass must not be skipped), so that the plans
    compare the indexes and not the state the database happens to be in: rows written since the last vacuum (the
    benchmarks', a notebook's own votes) leave their pages out of the visibility map, and an index-only scan then
    fetches them from the heap anyway (2,600 heap fetches turned 83 pages into 112 in one such checkout)."""
    if vacuum and not connection.in_atomic_block:  # VACUUM cannot run inside a transaction
        datagen.refresh_statistics()
    plans = {"with every index": explain(query, params, label="with every index", **kwargs)}
    for label, names in variants.items():
        plans[label] = explain(query, params, without=names, label=label, **kwargs)
    return plans


def summary_frame(plans: Mapping[str, Plan] | Iterable[Plan]):
    """One row per plan (variant, dropped, node types, what it read, rows, buffers, ms) as a pandas DataFrame."""
    import pandas as pd

    values = plans.values() if isinstance(plans, Mapping) else plans
    return pd.DataFrame([p.summary() for p in values])


def index_names(*, tables: Sequence[str] = SCHEMA_TABLES) -> list[str]:
    """The indexes on ``tables`` (for asserting that an experiment left the schema as it found it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ix.relname FROM pg_index i JOIN pg_class ix ON ix.oid = i.indexrelid "
            "WHERE i.indrelid::regclass::text = ANY(%s) ORDER BY 1",
            [list(tables)],
        )
        return [r[0] for r in cursor.fetchall()]


def refused_by(action: Callable[[], object]) -> str | None:
    """Run ``action`` (a write) in a transaction that is always rolled back; return the name of the constraint or
    trigger that refused it, or ``None`` when PostgreSQL accepted it. For showing the rules the schema enforces."""
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # deferred foreign keys: check now, not at commit
            action()
            raise _Rollback
    except _Rollback:
        return None
    except IntegrityError as exc:
        return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) or str(exc).splitlines()[0]
