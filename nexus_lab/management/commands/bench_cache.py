"""``manage.py bench_cache``: ``GET /api/polls/{id}/results/`` cached vs uncached vs a bare view, under gunicorn.

    python manage.py bench_cache                       # 1M votes (generated once, then reused), ~1-3 min
    python manage.py bench_cache --votes 100000 --rounds 3 --requests 200
    python manage.py bench_cache --json out.json       # also write the results there

See ``nexus_lab/caching/bench.py`` for what is measured and how.
"""

from __future__ import annotations

import signal
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from nexus_lab.benchmark import publish, raise_on_sigterm
from nexus_lab.caching import bench


class Command(BaseCommand):
    help = (
        "Benchmark the poll results endpoint with the cache, without it and against a bare Django view under "
        "gunicorn (alternating rounds, medians, paired ratios); print a table and save JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--votes", type=int, default=1_000_000, help="votes in the data set (default 1M)")
        parser.add_argument("--prefix", default=bench.DEFAULT_PREFIX, help="username prefix owning the data set")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--requests", type=int, default=300, help="requests per target per round")
        parser.add_argument("--rounds", type=int, default=5)
        parser.add_argument("--concurrency", type=int, default=4, help="client processes (1-64)")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per server")
        parser.add_argument(
            "--workload",
            type=int,
            default=600,
            help="requests of the seeded mixed workload per server, cached then uncached (0: skip)",
        )
        parser.add_argument("--json", dest="json_path", help="also write the JSON results to this path")
        parser.add_argument("--results-dir", help="folder for bench-cache-<time>.json (default: bench/results)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    def handle(self, *args, **opts):
        root = Path(settings.NEXUS_PROJECT_ROOT)

        previous = raise_on_sigterm()  # SIGTERM, like Ctrl-C, runs the finally blocks that stop gunicorn
        try:
            result = bench.run(
                root=root,
                votes=opts["votes"],
                prefix=opts["prefix"],
                seed=opts["seed"],
                requests=opts["requests"],
                rounds=opts["rounds"],
                concurrency=opts["concurrency"],
                workers=opts["workers"],
                workload_requests=opts["workload"],
                progress=not opts["no_progress"],
                echo=self.stdout.write,
            )
        except bench.BenchError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            raise CommandError("interrupted; gunicorn and the client processes were stopped") from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        self.stdout.write(bench.table(result))
        started = datetime.fromisoformat(result["timestamp"])
        publish(result, name="bench-cache", started=started, options=opts, write=self.stdout.write)
