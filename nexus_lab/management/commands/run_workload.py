"""``manage.py run_workload``: a seeded read/write load against the poll API, with what the cache answered.

    python manage.py run_workload                                  # 500 requests in-process, 4 workers
    python manage.py run_workload --requests 2000 --skew 1.3 --write-fraction 0.2
    python manage.py run_workload --duration 30 --concurrency 8 --invalidation global
    python manage.py run_workload --url http://127.0.0.1:8000      # against a running server (same database)
    python manage.py run_workload --json out.json                  # also every request, as JSON

In-process runs go through the whole Django stack (middleware, authentication, views) without a socket, so
``--ttl``, ``--invalidation`` and ``--no-cache`` apply to them; a server at ``--url`` uses its own settings.
Users and polls are created under ``--prefix`` (removed and rebuilt each run; ``--cleanup`` removes them after).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from nexus_backend.caching import config, keys, metrics
from nexus_backend.caching.store import REDIS_ERRORS
from nexus_lab.benchmark import write_json
from nexus_lab.caching import workload


class Command(BaseCommand):
    help = "Run a seeded, Zipf-skewed read/write workload against the poll API and report cache hits and latency."

    def add_arguments(self, parser):
        parser.add_argument("--requests", type=int, default=None, help="operations to run (default 500)")
        parser.add_argument("--duration", type=float, default=None, help="seconds to run (instead of, or as well)")
        parser.add_argument("--concurrency", type=int, default=4, help="worker threads / connections (1-64)")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--skew", type=float, default=1.1, help="Zipf exponent of poll popularity (0: uniform)")
        parser.add_argument("--write-fraction", type=float, default=0.1, help="share of operations that are votes")
        parser.add_argument("--read-mix", default="results=0.6,detail=0.3,list=0.1", help="weights of the read kinds")
        parser.add_argument("--polls", type=int, default=12, help="polls to create")
        parser.add_argument("--voters", type=int, default=300, help="voters to create")
        parser.add_argument("--poll-ids", default=None, help="use these existing polls (hottest first), e.g. 3,1,2")
        parser.add_argument("--prefix", default=workload.DEFAULT_PREFIX, help="username prefix of the workload data")
        parser.add_argument("--url", default=None, help="run over HTTP against this server (http://host:port)")
        parser.add_argument("--ttl", type=float, default=None, help="TTL in seconds for every namespace (in-process)")
        parser.add_argument("--invalidation", choices=config.INVALIDATION_STRATEGIES, default=None, help="(in-process)")
        parser.add_argument("--no-cache", action="store_true", help="switch the cache off (in-process)")
        parser.add_argument("--cleanup", action="store_true", help="remove the workload's users and polls after")
        parser.add_argument("--json", dest="json_path", default=None, help="write the summary and every request")
        parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")

    def handle(self, *args, **opts):
        in_process = {"ttl": opts["ttl"], "invalidation": opts["invalidation"], "no_cache": opts["no_cache"] or None}
        if opts["url"] and any(v is not None for v in in_process.values()):
            raise CommandError("--ttl, --invalidation and --no-cache apply to in-process runs, not to --url")
        requests = opts["requests"] if opts["requests"] is not None or opts["duration"] else 500
        try:
            cfg = workload.WorkloadConfig(
                requests=requests,
                duration=opts["duration"],
                concurrency=opts["concurrency"],
                seed=opts["seed"],
                skew=opts["skew"],
                write_fraction=opts["write_fraction"],
                read_mix=workload.parse_read_mix(opts["read_mix"]),
            )
            poll_ids = [int(p) for p in opts["poll_ids"].split(",")] if opts["poll_ids"] else None
        except ValueError as exc:
            raise CommandError(str(exc)) from None

        fixture = workload.workload_setup(
            polls=opts["polls"], voters=opts["voters"], seed=opts["seed"], prefix=opts["prefix"], poll_ids=poll_ids
        )
        changes = {}
        if opts["ttl"] is not None:
            changes["ttl"] = {name: opts["ttl"] for name in keys.NAMESPACES}
        if opts["invalidation"]:
            changes["invalidation"] = opts["invalidation"]
        if opts["no_cache"]:
            changes["enabled"] = False
        where = opts["url"] or "in-process"
        self.stdout.write(
            f"workload: {cfg.requests or 'unbounded'} requests{f' / {cfg.duration:g} s' if cfg.duration else ''}, "
            f"{cfg.concurrency} workers, {len(fixture.poll_ids)} polls (skew {cfg.skew:g}), "
            f"{cfg.write_fraction:.0%} votes, {where}"
        )
        try:
            with config.configured(**changes):
                before = _sample()
                result = workload.run_workload(
                    cfg, fixture, url=opts["url"], progress=not opts["no_progress"] and opts["verbosity"] > 0
                )
                after = _sample()
        finally:
            if opts["cleanup"]:
                workload.workload_reset(prefix=opts["prefix"])

        summary = result.summary()
        window = metrics.window(before, after) if before and after else None
        self._print(summary, window)
        if opts["json_path"]:
            path = Path(opts["json_path"])
            data = {
                "config": asdict(cfg),
                "summary": summary,
                "metrics_window": window,
                "records": [asdict(r) for r in result.records],
            }
            write_json(data, path)
            self.stdout.write(f"saved {path}")

    def _print(self, summary: dict, window: dict | None) -> None:
        ratio = summary["hit_ratio"]
        lines = [
            "",
            f"  {summary['requests']} requests in {summary['wall_s']:.2f} s ({summary['requests_per_s']} req/s, "
            f"{summary['transport']}); by kind: {summary['by_kind']}",
            f"  votes: {summary['votes_accepted']} accepted, {summary['votes_refused']} refused (409), "
            f"{summary['votes_exhausted']} turned into reads (no voter left for that poll)",
            f"  cache: {summary['cache']}  hit ratio {'-' if ratio is None else f'{ratio:.3f}'}  "
            f"stale reads {summary['stale_reads']}  errors {summary['errors'] or 'none'}",
            "",
            "  {:<10} {:>7} {:>9} {:>9} {:>9}".format("X-Cache", "reads", "p50 ms", "p95 ms", "mean ms"),
        ]
        for outcome, stats in sorted(summary["latency_ms"].items()):
            lines.append(
                f"  {outcome:<10} {stats['n']:>7} {stats['p50']:>9.2f} {stats['p95']:>9.2f} {stats['mean']:>9.2f}"
            )
        if window:
            redis, app = window["redis"], window["application"]
            lines += [
                "",
                f"  over the run: Redis INFO hit ratio {_ratio(redis['hit_ratio'])} "
                f"({redis['keyspace_hits']} hits / {redis['keyspace_misses']} misses, whole server); "
                f"application {_ratio(app['hit_ratio'])} ({app['hits']} / {app['misses']})",
            ]
            for name, counts in window["namespaces"].items():
                if counts["hits"] or counts["misses"]:
                    lines.append(
                        f"    {name:<14} hits {counts['hits']:>6}  misses {counts['misses']:>6}  "
                        f"ratio {_ratio(counts['hit_ratio'])}  recomputed {counts['computes']}  "
                        f"coalesced {counts['coalesced']}  discarded {counts['discarded']}"
                    )
        self.stdout.write("\n".join(lines))


def _sample() -> metrics.Sample | None:
    try:
        return metrics.sample()
    except REDIS_ERRORS:
        return None


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.3f}"
