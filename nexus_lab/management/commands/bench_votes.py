"""``manage.py bench_votes``: the vote-counting strategies side by side at 10k, 100k and 1M votes.

    python manage.py bench_votes                                   # a few minutes on a 2-core machine
    python manage.py bench_votes --scales 10k,100k --repeats 100   # quicker
    python manage.py bench_votes --scales 1m --workers 8,32,64     # the hot-option contention case
    python manage.py bench_votes --json out.json                   # also write the results there

For each scale it generates seeded data (``datagen``, prefix ``bench_``), then measures, strategies interleaved:

- the results query alone (``Strategy.option_counts``) on the hottest poll: median and p95; and again after the
  concurrent votes, with the delta table as they left it;
- ``GET /api/polls/{id}/results/`` in-process (full Django stack, response cache off): median and p95, and its
  ratio against the ``count`` strategy measured in the same run;
- vote write throughput: sequential ``vote_cast`` calls (each its own transaction) per strategy's write path, and
  the same from each ``--workers`` count of threads at once, all for one option of a fresh poll (the hot-option
  contention case), strategies alternating over ``--concurrent-rounds`` rounds while the delta fold runs as in
  production; each strategy's figure is the median of its per-round ratios to ``count``;
- how long one ``REFRESH MATERIALIZED VIEW CONCURRENTLY`` of the summary takes at that scale;
- exactness: after the concurrent votes, each strategy's counts against ``COUNT(*)`` per option on every poll it
  was raced on (``counts wrong``; must be 0 for every strategy but the stale ``summary``, refreshed first).

Prints a table, saves JSON to ``bench/results/bench-votes-<time>.json``, and removes its data (``--keep`` keeps
it). Performance targets live here, never in timed tests.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from nexus_backend.polls import counting
from nexus_lab.benchmark import TextTable, fmt, publish
from nexus_lab.management.commands.gen_votes import _count
from nexus_lab.polls import bench, datagen

DEFAULT_SCALES = "10k,100k,1m"


class Command(BaseCommand):
    help = "Benchmark the vote-counting strategies (read latency, write throughput) at several scales in one run."

    def add_arguments(self, parser):
        parser.add_argument("--scales", default=DEFAULT_SCALES, help=f"votes per scale (default {DEFAULT_SCALES})")
        parser.add_argument(
            "--strategies",
            default=",".join(counting.STRATEGIES),
            help=f"comma-separated (default: all, {','.join(counting.STRATEGIES)})",
        )
        parser.add_argument("--repeats", type=int, default=200, help="reads per strategy per scale (default 200)")
        parser.add_argument("--write-votes", type=int, default=200, help="sequential votes per round (default 200)")
        parser.add_argument("--write-rounds", type=int, default=3, help="interleaved write rounds (default 3)")
        parser.add_argument(
            "--workers", default="8,32,64", help="comma-separated thread counts for the concurrent test (1-64 each)"
        )
        parser.add_argument("--concurrent-votes", type=int, default=640, help="votes per concurrent race")
        parser.add_argument("--concurrent-rounds", type=int, default=7, help="alternating concurrent rounds")
        parser.add_argument("--seed", type=int, default=0, help="data seed")
        parser.add_argument("--prefix", default="bench_", help="username prefix owning the benchmark's data")
        parser.add_argument("--keep", action="store_true", help="keep the last scale's data afterwards")
        parser.add_argument("--json", dest="json_path", help="also write the JSON results to this path")
        parser.add_argument("--results-dir", help="folder for bench-votes-<time>.json (default: bench/results)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    # ------------------------------------------------------------------------------------------- entry point
    def handle(self, *args, **opts):
        from django.conf import settings

        try:
            scales = [_count(s) for s in opts["scales"].split(",") if s.strip()]
            strategies = [counting.get_strategy(s.strip()).name for s in opts["strategies"].split(",") if s.strip()]
            for votes in scales:
                datagen.plan_scale(votes=votes)
            datagen.check_prefix(opts["prefix"])
            workers = _thread_counts(opts["workers"])
        except (ValueError, datagen.ScaleError) as exc:
            raise CommandError(str(exc)) from None
        if not scales or not strategies:
            raise CommandError("--scales and --strategies need at least one value each")
        for name in ("repeats", "write_votes", "write_rounds", "concurrent_votes", "concurrent_rounds"):
            if opts[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1")

        started = datetime.now(UTC)
        result = {
            "schema": 1,
            "timestamp": started.isoformat(timespec="seconds"),
            "settings": {
                k: opts[k]
                for k in (
                    "repeats",
                    "write_votes",
                    "write_rounds",
                    "concurrent_votes",
                    "concurrent_rounds",
                    "seed",
                    "prefix",
                )
            }
            | {"workers": workers}
            | {"scales": scales, "strategies": strategies, "api_strategy": counting.RESULTS_STRATEGY},
            "environment": {
                "python": platform.python_version(),
                "django": __import__("django").get_version(),
                "cpu_count": os.cpu_count(),
                "service_mode": getattr(settings, "NEXUS_SERVICE_MODE", None),
                "postgres": self._server_version(),
            },
            "scales": [],
        }
        try:
            for votes in scales:
                self.stdout.write(f"\n== {votes:,} votes")
                result["scales"].append(
                    bench.measure_scale(
                        votes=votes,
                        strategies=strategies,
                        repeats=opts["repeats"],
                        write_votes=opts["write_votes"],
                        write_rounds=opts["write_rounds"],
                        workers=workers,
                        concurrent_votes=opts["concurrent_votes"],
                        concurrent_rounds=opts["concurrent_rounds"],
                        seed=opts["seed"],
                        prefix=opts["prefix"],
                        progress=not opts["no_progress"] and opts["verbosity"] > 0,
                        log=lambda line: self.stdout.write("   " + line),
                    )
                )
        except KeyboardInterrupt:
            raise CommandError(
                "interrupted; run `manage.py gen_votes --delete --prefix bench_` to remove data"
            ) from None
        finally:
            if not opts["keep"]:
                datagen.delete(prefix=opts["prefix"])
        self.stdout.write(format_table(result))
        self._save(result, started, opts)

    # ------------------------------------------------------------------------------------------- output
    @staticmethod
    def _server_version() -> str:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return cursor.fetchone()[0]

    def _save(self, result: dict, started: datetime, opts) -> None:
        publish(result, name="bench-votes", started=started, options=opts, write=self.stdout.write)


def _thread_counts(text: str) -> list[int]:
    """``"8,32,64"`` -> ``[8, 32, 64]``; each from 1 to 64."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--workers must be comma-separated whole numbers, got {text!r}") from None
    if not counts or not all(1 <= n <= 64 for n in counts):
        raise ValueError(f"--workers must be from 1 to 64 each, got {text!r}")
    return sorted(set(counts))


def _fmt(value, digits: int = 2) -> str:
    return fmt(value, digits, grouped=True)


def format_table(result: dict) -> str:
    """The benchmark as a table a person can read (one line per scale and strategy; per thread count, concurrent
    votes/s and its paired ratio to ``count``)."""
    env, s = result["environment"], result["settings"]
    threads = [str(w) for w in s["workers"]]
    head = (
        "votes",
        "hot poll",
        "strategy",
        "query p50",
        "query p95",
        "API p50",
        "API p95",
        "API x count",
        "votes/s seq",
        *(f"{w}thr v/s (x count)" for w in threads),
        "fresh",
    )
    widths = (10, 9, 8, 10, 10, 9, 9, 11, 11, *(19 for _ in threads), 6)
    table = TextTable([(title, width, ">") for title, width in zip(head, widths, strict=True)], indent="", sep="  ")
    lines = [
        "",
        f"bench_votes  {result['timestamp']}  ({env['cpu_count']} CPUs, PostgreSQL {env['postgres']}, "
        f"services: {env['service_mode']}; {s['repeats']} reads per strategy, {s['write_rounds']} x "
        f"{s['write_votes']} sequential votes, {s['concurrent_rounds']} x {s['concurrent_votes']} votes from "
        f"{', '.join(threads)} threads on one option)",
        "  latencies in ms (median p50, 95th percentile); API = GET /api/polls/{id}/results/ in-process, uncached, "
        "on the hottest poll",
        "",
        *table.head(),
    ]
    for row in result["scales"]:
        for name, d in row["strategies"].items():
            per = d["concurrent_by_workers"]
            lines.append(
                table.row(
                    f"{row['votes']:,}",
                    f"{row['hot_poll_votes']:,}",
                    name,
                    _fmt(d["query"]["median_ms"], 3),
                    _fmt(d["query"]["p95_ms"], 3),
                    _fmt(d["endpoint"]["median_ms"], 3),
                    _fmt(d["endpoint"]["p95_ms"], 3),
                    "x" + _fmt(d.get("endpoint_speedup_vs_count"), 1) if d.get("endpoint_speedup_vs_count") else "-",
                    _fmt(d["votes_per_s_sequential"], 0),
                    *(f"{_fmt(per[w]['votes_per_s'], 0)} (x{_fmt(per[w]['x_count'], 2)})" for w in threads),
                    "yes" if d["fresh"] else "stale",
                )
            )
        extra = f"summary refresh {_fmt(row['summary_refresh_ms'], 1)} ms"
        after = {n: d["query_after_concurrent_votes"]["median_ms"] for n, d in row["strategies"].items()}
        extra += (
            f"; query p50 after the concurrent votes ({row['pending_deltas_after_concurrent_votes']} deltas pending): "
            + ", ".join(f"{n} {_fmt(ms, 3)}" for n, ms in after.items())
        )
        wrong = {k: v for k, v in row.get("counts_wrong_after_concurrent_votes", {}).items() if v}
        extra += f"; COUNTS WRONG after concurrent votes: {wrong}" if wrong else "; counts == COUNT(*) after the run"
        hits = {k: v for k, v in row.get("endpoint_cache_headers", {}).items() if k not in ("-", "off", "miss")}
        if hits:
            extra += f"; WARNING: cached responses seen {hits}"
        lines.append(f"{'':>10}  {extra}")
    lines.append(
        f"  The API reads '{result['settings']['api_strategy']}'. 'API x count' = count's median / this strategy's "
        "median; '(x count)' = median of the per-round ratios of concurrent votes/s to count's, same run. "
        "Compare ratios, not absolute numbers, across machines."
    )
    return "\n".join(lines)
