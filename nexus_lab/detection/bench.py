"""The detector's performance targets, measured in one run (``manage.py bench_detect``; issue 5 "Done when").

- **The hourly task** (``services.detect_window``) over a ``RequestLog`` of ``rows`` rows, ``window_rows`` of them in
  the window: median of ``repeats`` runs, each inside a transaction that is rolled back (every run does the full
  work, first-run upserts included, and leaves no ``SuspiciousIP`` behind). The window holds labelled traffic from
  the generator (``traffic.generate``); the other rows are the hours before it.
- **Replay** (``replay.replay_file``) of a generated combined log of about ``lines`` lines: lines/s of the median of
  ``repeats`` runs, each with cold caches, on every usable core (what ``replay_file`` chooses for the file).
- **A parameter grid** of ``grid`` points over that log: the file is read once, then every point re-judges the
  cached per-IP aggregates (``ReplayResult.rejudge``) and is scored against the labels.

The scratch rows are loaded with ``COPY`` and clearly marked so they can never be mistaken for real traffic:
their timestamps lie in January 2000 (``SCRATCH_START``) and their ``duration_ms`` is ``-1`` (a real request
never takes negative time). ``scratch_delete`` removes exactly those rows, also ones a crashed run left behind.
"""

from __future__ import annotations

import gc
import io
import itertools
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from django.db import connection, transaction

from nexus_backend.tracking.detection import aggregate
from nexus_backend.tracking.detection.clf import COMBINED
from nexus_backend.tracking.detection.detector import GROUPS_SQL, WORK_MEM
from nexus_backend.tracking.detection.parallel import processes_for
from nexus_backend.tracking.detection.parsers import open_log
from nexus_backend.tracking.detection.replay import replay_file
from nexus_backend.tracking.detection.rules import load_rules
from nexus_backend.tracking.detection.services import detect_window
from nexus_lab import traffic
from nexus_lab.benchmark import TextTable
from nexus_lab.detection import evaluate

SCRATCH_START = datetime(2000, 1, 1, tzinfo=UTC)  # scratch rows live in [SCRATCH_START, SCRATCH_END)
SCRATCH_END = datetime(2000, 2, 1, tzinfo=UTC)
SCRATCH_DURATION = -1.0
LINES_PER_HOUR_PER_SCALE = 5_550  # about what traffic.generate writes an hour at scale 1: a first guess only
COLUMNS = ["request_id", "ip_address", "timestamp", "method", "path", "status_code", "duration_ms", "user_agent",
           "referrer"]  # fmt: skip
BACKGROUND_PATHS = ["/api/polls/", "/api/polls/{}/", "/api/polls/{}/results/", "/api/polls/{}/vote/", "/",
                    "/static/app.js", "/api/auth/token/", "/api/me/"]  # fmt: skip
COPY_CHUNK = 250_000


# ------------------------------------------------------------------------------------------- scratch rows


def _scratch_where() -> tuple[str, list]:
    return "timestamp >= %s AND timestamp < %s AND duration_ms = %s", [SCRATCH_START, SCRATCH_END, SCRATCH_DURATION]


def scratch_delete() -> int:
    """Remove every scratch row (and nothing else). Returns how many went."""
    where, params = _scratch_where()
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM tracking_requestlog WHERE {where}", params)
        return cur.rowcount


def _csv(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _copy_lines(lines, count: int) -> None:
    sql = f"COPY tracking_requestlog ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
    with connection.cursor() as cursor:
        raw = getattr(cursor, "cursor", cursor)  # the psycopg2 cursor (copy_expert) under Django's wrapper
        while True:
            chunk = list(itertools.islice(lines, COPY_CHUNK))
            if not chunk:
                break
            raw.copy_expert(sql, io.StringIO("".join(chunk)))


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    hexes = rng.bytes(16 * n).hex()
    chunks = (hexes[i : i + 32] for i in range(0, 32 * n, 32))
    return [f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}" for h in chunks]


def generate_lines(lines: int, *, hours: int, seed: int, start: datetime = traffic.DEFAULT_START) -> traffic.Traffic:
    """Generated traffic of about ``lines`` requests in ``[start, start + hours)``: how many an hour the generator
    writes at scale 1 depends on the hour of the day and the seed, so the scale guessed from
    ``LINES_PER_HOUR_PER_SCALE`` is corrected once by what that first run wrote (within 5 %, or run again)."""
    end = start.timestamp() + hours * 3600
    scale = max(lines / (hours * LINES_PER_HOUR_PER_SCALE), 0.01)
    t = traffic.generate(seed=seed, hours=hours, scale=scale, start=start)
    written = sum(1 for r in t.records if r.ts < end)
    if written and abs(written - lines) > 0.05 * lines:
        t = traffic.generate(seed=seed, hours=hours, scale=max(scale * lines / written, 0.01), start=start)
    return t


def scratch_load(*, rows: int, window_rows: int, seed: int = 7) -> dict:
    """``rows`` scratch rows with ``COPY``: the window (the last hour, generated labelled traffic, about
    ``window_rows`` rows) and before it, in time order, ``rows - window rows`` background rows spread over the
    preceding hours. Returns the window and what was loaded."""
    rng = np.random.default_rng(seed)
    hours_before = max(1, min(24 * 28, -(-(rows - window_rows) // 100_000)))  # ~100k rows an hour
    window_start = SCRATCH_START + timedelta(hours=hours_before)
    t = generate_lines(window_rows, hours=1, seed=seed, start=window_start)
    window = [r for r in t.records if r.ts < window_start.timestamp() + 3600][: max(0, rows)]
    background = max(0, rows - len(window))

    def background_lines():
        left = background
        t0 = SCRATCH_START.timestamp()
        span = window_start.timestamp() - t0
        done = 0
        while left > 0:
            n = min(COPY_CHUNK, left)
            ts = np.sort(t0 + (done + np.arange(n) + rng.random(n)) * span / background)
            ips = rng.integers(0, 1 << 17, n)  # 198.18.0.0/15: the range reserved for benchmarks (RFC 2544)
            paths = rng.integers(0, len(BACKGROUND_PATHS), n)
            polls = rng.integers(1, 500, n)
            stamps = np.datetime_as_string((ts * 1e6).astype("datetime64[us]"), unit="us")
            for rid, ip, stamp, p, poll in zip(_uuids(rng, n), ips.tolist(), stamps.tolist(), paths.tolist(),
                                               polls.tolist(), strict=True):  # fmt: skip
                path = BACKGROUND_PATHS[p].format(poll)
                method = "POST" if path.endswith(("vote/", "token/")) else "GET"
                yield (f"{rid},198.{18 + (ip >> 16)}.{(ip >> 8) & 255}.{ip & 255},{stamp}+00,{method},{path},200,"
                       f"{SCRATCH_DURATION},Mozilla/5.0 (bench),\"\"\n")  # fmt: skip
            left -= n
            done += n

    def window_lines():
        ids = _uuids(rng, len(window))
        for rid, r in zip(ids, window, strict=True):
            stamp = datetime.fromtimestamp(r.ts, tz=UTC).isoformat()
            yield (f"{rid},{r.ip},{stamp},{_csv(r.method)},{_csv(r.path)},{r.status},{SCRATCH_DURATION},"
                   f"{_csv(r.user_agent)},{_csv(r.referrer)}\n")  # fmt: skip

    started = time.perf_counter()
    _copy_lines(background_lines(), background)
    _copy_lines(window_lines(), len(window))
    with connection.cursor() as cur:
        cur.execute("ANALYZE tracking_requestlog")
    return {
        "rows": background + len(window),
        "window_rows": len(window),
        "window_start": window_start,
        "window_end": window_start + timedelta(hours=1),
        "load_seconds": round(time.perf_counter() - started, 2),
    }


# ------------------------------------------------------------------------------------------- the hourly task


def explain_window(start: datetime, end: datetime, window_seconds: int) -> str:
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")  # as aggregate_request_log runs it
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + GROUPS_SQL, {"w": window_seconds, "start": start, "end": end})
        return "\n".join(r[0] for r in cur.fetchall())


def time_statement(start: datetime, end: datetime, window_seconds: int) -> float:
    """The task's floor, timed in the same run: its ``GROUP BY`` statement alone, every row fetched."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        t0 = time.perf_counter()
        cur.execute(GROUPS_SQL, {"w": window_seconds, "start": start, "end": end})
        cur.fetchall()
        return time.perf_counter() - t0


def time_floor(path: Path) -> float:
    """Replay's floor, timed in the same run: lines/s of matching the combined-log regex alone over the file, in one
    process (no counting, no classifying, no judging)."""
    match = COMBINED.match
    t0 = time.perf_counter()
    n = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            match(line)
            n += 1
    seconds = time.perf_counter() - t0
    return n / seconds if seconds else 0.0


def time_task(start: datetime, end: datetime, *, repeats: int = 3) -> dict:
    """``detect_window`` over [start, end), ``repeats`` times, each rolled back (no auto-blocks: they touch the
    cache). Returns the median and every run, and what the last run found."""
    rules = load_rules()
    runs, statements = [], []
    result = None
    for _ in range(repeats):
        with transaction.atomic():
            t0 = time.perf_counter()
            result = detect_window(start=start, end=end, rules=rules, auto_block=False)
            runs.append(time.perf_counter() - t0)
            transaction.set_rollback(True)
        statements.append(time_statement(start, end, rules.window_seconds))
    assert result is not None, "repeats must be at least 1"
    median, statement = statistics.median(runs), statistics.median(statements)
    return {
        "median_seconds": round(median, 4),
        "runs_seconds": [round(r, 4) for r in runs],
        "statement_seconds": round(statement, 4),
        "vs_statement": round(median / statement, 2) if statement else None,
        "addresses": result.addresses,
        "flagged": result.flagged,
        "written": result.written,
    }


# ------------------------------------------------------------------------------------------- replay and the grid


def grid_points(n: int) -> list[dict]:
    """``n`` parameter sets: threshold x volume.max_requests x scraper.min_distinct_paths (5 x 5 x 2 = 50 first)."""
    thresholds = [0.4, 0.5, 0.6, 0.7, 0.8, 0.3, 0.9, 0.45, 0.55, 0.65]
    volumes = [200, 500, 1000, 2000, 5000, 100, 300, 800, 1500, 3000]
    scrapers = [100, 150, 50, 200, 300]
    points = []
    for k in range(1, len(scrapers) + 1):  # widen the scraper axis only when more points are asked for
        points = [
            {"threshold": t, "volume.max_requests": v, "scraper.min_distinct_paths": s}
            for s, t, v in itertools.product(scrapers[: max(2, k)], thresholds[:5], volumes[:5])
        ]
        if len(points) >= n:
            break
    if len(points) < n:
        points = [
            {"threshold": t, "volume.max_requests": v, "scraper.min_distinct_paths": s}
            for s, t, v in itertools.product(scrapers, thresholds, volumes)
        ]
    return points[:n]


def _write_log(lines: int, seed: int, folder: Path) -> tuple[Path, Path]:
    hours = 24 if lines >= 24 * 500 else 1
    t = generate_lines(lines, hours=hours, seed=seed)
    return traffic.write_traffic(t, folder / "bench.log", folder / "bench-labels.csv")


def time_replay(*, lines: int, grid: int, seed: int = 7, folder: str | None = None, repeats: int = 1) -> dict:
    """Generate a labelled combined log of about ``lines`` lines, replay it ``repeats`` times (lines/s of the median
    run; each starts cold, as ``replay_log`` does), then score ``grid`` parameter sets on the cached aggregates of
    the last. ``grid_total_seconds`` is the whole job: read the file (the median run) + the grid."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        log, labels_path = _write_log(lines, seed, Path(tmp))
        gc.collect()  # replay is timed as replay_log runs it: a process holding a file, not a million records
        labels = evaluate.grouped(traffic.read_labels(labels_path))  # once, not at every grid point
        processes = processes_for(open_log(log), None)  # what replay_file chooses for this file on this machine
        floor = time_floor(log)
        runs = []
        for _ in range(max(1, repeats)):
            aggregate.clear_caches()  # what a fresh replay_log process starts with
            result = replay_file(log, processes=processes)
            runs.append(result.seconds)
        seconds = statistics.median(runs)
        points = grid_points(grid)
        t0 = time.perf_counter()
        scored = [{**p, **evaluate.overall(result, labels, result.rules.with_params(p))} for p in points]
        sweep = time.perf_counter() - t0
    best = max(scored, key=lambda row: row["f1"]) if scored else {}
    return {
        "lines": result.stats.lines,
        "replay_seconds": round(seconds, 3),
        "replay_runs_seconds": [round(r, 3) for r in runs],
        "lines_per_second": round(result.stats.lines / seconds) if seconds else None,
        "floor_lines_per_second": round(floor),
        "vs_floor": round(result.stats.lines / seconds / floor, 3) if seconds and floor else None,
        "processes": processes,
        "flagged": len(result.flagged),
        "grid_points": len(points),
        "grid_sweep_seconds": round(sweep, 3),
        "grid_total_seconds": round(seconds + sweep, 3),
        "grid_best": best,
    }


# ------------------------------------------------------------------------------------------- the whole run


def run(
    *, rows: int, window_rows: int, lines: int, grid: int, repeats: int = 3, seed: int = 7, keep: bool = False
) -> dict:
    """Everything, in one run; scratch rows are deleted afterwards (unless ``keep``), also after an error."""
    started = datetime.now(tz=UTC)
    out: dict = {
        "benchmark": "detect",
        "started": started.isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": _cpus(), "postgres": _pg_version()},
        "params": {"rows": rows, "window_rows": window_rows, "lines": lines, "grid": grid, "repeats": repeats},
        "targets": {"task_seconds": 1.0, "lines_per_second": 100_000, "grid_total_seconds": 60.0},
    }
    leftover = scratch_delete()
    try:
        loaded = scratch_load(rows=rows, window_rows=window_rows, seed=seed)
        start, end = loaded.pop("window_start"), loaded.pop("window_end")
        out["task"] = {
            **loaded,
            "window": [start.isoformat(), end.isoformat()],
            **time_task(start, end, repeats=repeats),
            "plan": explain_window(start, end, load_rules().window_seconds),
        }
    finally:
        out["scratch_deleted"] = 0 if keep else scratch_delete()
        out["scratch_leftover_deleted"] = leftover
    out["replay"] = time_replay(lines=lines, grid=grid, seed=seed, repeats=repeats)
    r, tk = out["replay"], out["task"]
    out["met"] = {
        "task_seconds": tk["median_seconds"] < out["targets"]["task_seconds"],
        "lines_per_second": (r["lines_per_second"] or 0) >= out["targets"]["lines_per_second"],
        "grid_total_seconds": r["grid_total_seconds"] < out["targets"]["grid_total_seconds"],
    }
    return out


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def _pg_version() -> str:
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        return cur.fetchone()[0]


def format_table(result: dict) -> str:
    t, r, m = result["task"], result["replay"], result["met"]

    def ok(flag: bool) -> str:
        return "yes" if flag else "NO"

    rows = [
        ("measure", "value", "target", "met"),
        (
            f"hourly task, {t['rows']:,} rows, {t['window_rows']:,} in window (median of {len(t['runs_seconds'])})",
            f"{t['median_seconds']:.3f} s",
            "< 1 s",
            ok(m["task_seconds"]),
        ),
        (
            f"replay, {r['lines']:,} lines, {r.get('processes', 1)} process(es) "
            f"(median of {len(r.get('replay_runs_seconds', [0]))})",
            f"{r['lines_per_second']:,} lines/s",
            ">= 100,000",
            ok(m["lines_per_second"]),
        ),
        (
            f"{r['grid_points']}-point grid (read once {r['replay_seconds']:.1f} s "
            f"+ sweep {r['grid_sweep_seconds']:.1f} s)",
            f"{r['grid_total_seconds']:.1f} s",
            "< 60 s",
            ok(m["grid_total_seconds"]),
        ),
    ]
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    table = TextTable([(title, w, "<") for title, w in zip(rows[0], widths, strict=True)], indent="", sep="  ")
    lines = [*table.head(), *(table.row(*row) for row in rows[1:])]
    lines.append(f"replay runs: {', '.join(f'{s:.2f}' for s in r.get('replay_runs_seconds', []))} s")
    lines.append(
        f"same-run floors (this machine's speed): the task's GROUP BY statement alone {t['statement_seconds']:.3f} s "
        f"(the task took x{t['vs_statement']}); the log regex alone, one process, {r['floor_lines_per_second']:,} "
        f"lines/s (replay ran at {r['vs_floor']} of it)"
    )
    lines.append(
        f"task runs: {', '.join(f'{s:.3f}' for s in t['runs_seconds'])} s; {t['addresses']:,} (window, address) "
        f"pairs, {t['flagged']} flagged; load {t['load_seconds']:.1f} s; scratch rows deleted: "
        f"{result['scratch_deleted']:,}"
    )
    return "\n".join(lines)
