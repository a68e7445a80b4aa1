"""``manage.py bench_detect``: the suspicious-IP detector's performance targets, measured in one run.

    python manage.py bench_detect                     # 5M rows, 100k in the window, 1M log lines, 50-point grid
    python manage.py bench_detect --rows 200000 --window-rows 20000 --lines 100000 --grid 10   # quicker

Loads clearly-marked scratch rows into ``RequestLog`` with COPY (January 2000, ``duration_ms = -1``), times the
hourly task (median of 3, each rolled back), deletes the scratch rows, then times replay of a generated log and a
parameter grid over it (``tracking.detection.bench``). Prints a table and saves JSON to
``bench/results/bench-detect-<time>.json``. Performance targets live here, never in timed tests.
"""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from nexus_lab.benchmark import publish
from nexus_lab.detection import bench


class Command(BaseCommand):
    help = "Benchmark the suspicious-IP detector: the hourly task over a large RequestLog, replay lines/s, a grid."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=5_000_000, help="RequestLog rows in all (default 5,000,000)")
        parser.add_argument("--window-rows", type=int, default=100_000, help="of which in the window (100,000)")
        parser.add_argument("--lines", type=int, default=1_000_000, help="lines of the replayed log (1,000,000)")
        parser.add_argument("--grid", type=int, default=50, help="parameter sets in the grid (50)")
        parser.add_argument(
            "--repeats", type=int, default=3, help="task runs and replays; the median of each is reported (3)"
        )
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--keep", action="store_true", help="keep the scratch rows (delete: --delete-only)")
        parser.add_argument("--delete-only", action="store_true", help="only delete scratch rows left behind")
        parser.add_argument("--json", dest="json_path", help="also write the JSON results to this path")
        parser.add_argument("--results-dir", help="folder for bench-detect-<time>.json (default: bench/results)")

    def handle(self, *args, **o):
        if o["delete_only"]:
            self.stdout.write(f"deleted {bench.scratch_delete():,} scratch rows")
            return
        if o["window_rows"] < 1 or o["rows"] < o["window_rows"] or o["lines"] < 1 or o["grid"] < 1:
            raise CommandError("need 1 <= --window-rows <= --rows, --lines >= 1 and --grid >= 1")
        if o["repeats"] < 1:
            raise CommandError("--repeats must be at least 1")
        result = bench.run(
            rows=o["rows"],
            window_rows=o["window_rows"],
            lines=o["lines"],
            grid=o["grid"],
            repeats=o["repeats"],
            seed=o["seed"],
            keep=o["keep"],
        )
        self.stdout.write(bench.format_table(result))
        started = datetime.fromisoformat(result["started"])
        publish(result, name="bench-detect", started=started, options=o, write=self.stdout.write)
