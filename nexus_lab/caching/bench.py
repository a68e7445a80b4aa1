"""The cache benchmark (``manage.py bench_cache``): ``GET /api/polls/{id}/results/`` cached, uncached and a bare
Django view, under gunicorn, in one run.

Three gunicorns serve the same code and database:

- ``cached``: the API as deployed;
- ``uncached``: ``NEXUS_CACHE_ENABLED=false``, every read runs the selectors (which read the denormalised vote
  counters of ``nexus_backend.polls.counting``);
- ``uncached_count``: cache off, and the results counted with ``COUNT(*)`` at read time (the ``count`` strategy):
  what a result costs without the counters.

The bare view (``/bench/bare/``) is measured on the cached server. The poll is the hottest of a generated data
set (``nexus_lab.polls.datagen``, 1M votes by default, reused when it is already there). Rounds alternate
between the four targets (rotating their order) and each figure is the median across rounds; the ratios are
paired per round, then the median is taken (docs/benchmarks.md: ratios measured side by side, never thresholds in
tests).

Then (``workload_requests``, 600 by default) the seeded mixed workload of :mod:`.workload` (10% votes, Zipf
popularity over 12 polls of its own) runs over HTTP against the cached server and, with the same operations,
against the uncached one: hit ratio, latency by ``X-Cache`` outcome, stale reads, and the throughput ratio on a
realistic mix rather than one hot key.

Request logging (``nexus_backend.tracking``) is switched off in every server: it costs every endpoint the same
and has its own benchmark (``manage.py bench --sections logging``).

The load generator and gunicorn control are the shared harness's (``nexus_lab.benchmark``).
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from nexus_backend.polls.cached_reads import CACHE_HEADER
from nexus_lab.benchmark import (
    HOST,
    USER_AGENT,
    Gunicorn,
    TextTable,
    alternate_rounds,
    client_init,
    fmt,
    git_commit,
    paired_ratio,
    server_env,
    stop_all,
    summarise_rounds,
    warm_up,
)

DEFAULT_PREFIX = "cachebench_"
TARGETS = ("cached", "uncached", "uncached_count", "bare")
SERVERS = {"cached": "cache on", "uncached": "cache off", "uncached_count": "off, COUNT", "bare": "cache on"}
TARGET_RATIOS = {"cached_over_uncached": 5.0, "cached_over_uncached_count": 5.0, "cached_over_bare": 0.6}


#: Why ``bare / uncached`` is printed: a cached read runs the same middleware as the bare view (client address,
#: block list, request log, request id) plus DRF and a Redis round trip, so it cannot serve more than the bare view.
#: That ratio bounds ``cached / uncached`` for any cache inside Django, whatever the cache does.
CEILING_NOTE = "the most any cache inside Django can reach over uncached"


class BenchError(RuntimeError):
    """The benchmark cannot run; ``str()`` says why in one line."""


# --------------------------------------------------------------------------- data


def prepare_data(*, votes: int, prefix: str = DEFAULT_PREFIX, seed: int = 0, progress: bool = False) -> dict:
    """The hottest poll of ``prefix``'s generated data set with ``votes`` votes in all, generated if it is not
    there yet (``datagen.generate``: PostgreSQL COPY, about a minute for 1M votes). Returns its id, its votes and
    whether it was generated now."""
    from django.contrib.auth import get_user_model
    from django.db.models import Sum

    from nexus_backend.polls.models import Option
    from nexus_lab.polls import datagen

    owners = get_user_model().objects.filter(username__startswith=prefix)
    options = Option.objects.filter(poll__owner__in=owners)
    existing = options.aggregate(total=Sum("vote_count"))["total"] or 0
    generated = False
    if existing != votes:
        result = datagen.generate(votes=votes, prefix=prefix, seed=seed, progress=progress)
        generated = True
        poll_id = result.hot_poll_id
    else:
        hottest = options.values("poll_id").annotate(v=Sum("vote_count")).order_by("-v", "poll_id").first()
        assert hottest is not None, "votes exist, so options do"
        poll_id = hottest["poll_id"]
    poll_votes = Option.objects.filter(poll_id=poll_id).aggregate(v=Sum("vote_count"))["v"] or 0
    return {"poll_id": poll_id, "poll_votes": poll_votes, "total_votes": votes, "generated": generated}


# --------------------------------------------------------------------------- measuring


def _head(port: int, path: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", path, headers={"Accept": "application/json", "User-Agent": USER_AGENT})
        response = conn.getresponse()
        return response.status, response.getheader(CACHE_HEADER, ""), response.read()
    finally:
        conn.close()


def _paired(rounds: list[dict], baseline: list[dict]) -> float | None:
    """Median over rounds of (throughput / baseline throughput), each pair measured in the same round."""
    ratio = paired_ratio(rounds, baseline)
    return ratio["throughput"] if ratio else None


def _server_env(*, cache: bool, count: bool = False) -> dict[str, str]:
    env = server_env(
        NEXUS_CACHE_ENABLED="true" if cache else "false",
        NEXUS_REQUEST_LOGGING="off",
        # The mixed workload votes from one address, faster than the per-IP vote limit allows; that limit has its
        # own tests (nexus_backend.tracking), here it would only turn votes into 429s.
        NEXUS_RATE_VOTE_IP="1000000/min",
        NEXUS_RATE_VOTE_USER="1000000/min",
    )
    if count:
        env["GUNICORN_CMD_ARGS"] = "--config python:nexus_lab.caching.gunicorn_count"
    return env


def run(
    *,
    root: Path,
    votes: int = 1_000_000,
    prefix: str = DEFAULT_PREFIX,
    seed: int = 0,
    requests: int = 300,
    rounds: int = 5,
    concurrency: int = 4,
    workers: int = 2,
    workload_requests: int = 600,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> dict:
    """Prepare the data, start the gunicorns, measure, stop them; return the results (see the module doc).
    ``workload_requests`` > 0 also runs the seeded mixed workload (:mod:`.workload`) over HTTP against the cached
    and the uncached server."""
    from django.db import connections

    if requests < 1 or rounds < 1 or workers < 1 or not 1 <= concurrency <= 64:
        raise BenchError("requests, rounds and workers must be at least 1, concurrency between 1 and 64")
    started = datetime.now(UTC)
    t = time.monotonic()
    data = prepare_data(votes=votes, prefix=prefix, seed=seed, progress=progress)
    echo(
        f"data: poll {data['poll_id']} with {data['poll_votes']:,} of {votes:,} votes "
        f"({'generated' if data['generated'] else 'reused'} in {time.monotonic() - t:.1f} s)"
    )
    results_path = f"/api/polls/{data['poll_id']}/results/"
    paths = {name: results_path for name in TARGETS} | {"bare": "/bench/bare/"}
    servers = {
        "cached": Gunicorn(root=root, workers=workers, env=_server_env(cache=True)),
        "uncached": Gunicorn(root=root, workers=workers, env=_server_env(cache=False)),
        "uncached_count": Gunicorn(root=root, workers=workers, env=_server_env(cache=False, count=True)),
    }
    ports: dict[str, int] = {}
    user_agent = f"{USER_AGENT}/cache/{started:%Y%m%dT%H%M%S}"
    pool = None
    try:
        for name, server in servers.items():
            echo(f"starting gunicorn for {name} ({workers} sync workers, {SERVERS[name]})")
            server.start()
        for name, server in servers.items():
            status, health = server.wait_healthy()
            if status != 200:
                echo(f"warning: /health/ of the {name} server answers {status}: {health.get('checks', health)}")
        ports = {name: server.port for name, server in servers.items()} | {"bare": servers["cached"].port}
        checks, bodies = {}, {}
        for name in TARGETS:
            status, header, body = _head(ports[name], paths[name])
            if status != 200:
                raise BenchError(f"GET {paths[name]} on the {name} server answered {status}: {body[:200]!r}")
            checks[name], bodies[name] = header, body
        if checks["uncached"] != "off" or checks["uncached_count"] != "off" or checks["cached"] not in ("hit", "miss"):
            raise BenchError(f"unexpected {CACHE_HEADER} headers: {checks} (cached: hit/miss, uncached: off)")
        if not bodies["cached"] == bodies["uncached"] == bodies["uncached_count"]:
            raise BenchError("the three servers answer different results for the same poll")

        connections.close_all()
        pool = multiprocessing.get_context("spawn").Pool(concurrency, initializer=client_init)
        targets = {name: (ports[name], paths[name]) for name in TARGETS}
        # warm-up: imports, connections, the cached entry
        warm_up(pool, targets, concurrency=concurrency, workers=workers, user_agent=user_agent)
        status, header, _ = _head(ports["cached"], paths["cached"])
        if header != "hit":
            raise BenchError(f"the cached server answered {CACHE_HEADER}: {header!r} after the warm-up, not 'hit'")

        measured = alternate_rounds(
            pool,
            targets,
            rounds=rounds,
            requests=requests,
            concurrency=concurrency,
            user_agent=user_agent,
            progress=progress,
        )
        pool.terminate()
        pool.join()
        pool = None
        mixed = _mixed_workload(ports, workload_requests, concurrency, echo) if workload_requests else None
    finally:
        stop_all(pool, *servers.values())
        echo("gunicorn stopped")

    rows = {name: summarise_rounds(paths[name], measured[name]) for name in TARGETS}
    ratios = {
        "cached_over_uncached": _paired(measured["cached"], measured["uncached"]),
        "cached_over_uncached_count": _paired(measured["cached"], measured["uncached_count"]),
        "cached_over_bare": _paired(measured["cached"], measured["bare"]),
        # No target: the most any cache inside Django could reach over the uncached endpoint (CEILING_NOTE).
        "bare_over_uncached": _paired(measured["bare"], measured["uncached"]),
    }
    return {
        "schema": 1,
        "timestamp": started.isoformat(timespec="seconds"),
        "settings": {
            "requests_per_round": requests,
            "rounds": rounds,
            "concurrency": concurrency,
            "gunicorn_workers": workers,
            "request_logging": "off",
        },
        "data": data,
        "environment": {
            "python": platform.python_version(),
            "django": __import__("django").get_version(),
            "cpu_count": os.cpu_count(),
            "git_commit": git_commit(root),
        },
        "endpoints": rows,
        "ratios": ratios,
        "targets": TARGET_RATIOS,
        "workload": mixed,
    }


WORKLOAD_PREFIX = "cbwl_"


def _mixed_workload(ports: dict[str, int], requests: int, concurrency: int, echo) -> dict:
    """The seeded read/write workload (10% votes, Zipf over 12 polls) against the cached server, then the same
    operations against the uncached one: what the cache is worth on a realistic mix, not one hot key."""
    from nexus_lab.caching import workload

    echo(f"mixed workload: {requests} requests per server, {concurrency} connections")
    fixture = workload.workload_setup(polls=12, voters=max(100, requests // 2), seed=7, prefix=WORKLOAD_PREFIX)
    cfg = workload.WorkloadConfig(requests=requests, concurrency=concurrency, seed=7, write_fraction=0.1)
    try:
        summaries = {}
        for name in ("cached", "uncached"):
            result = workload.run_workload(cfg, fixture, url=f"http://{HOST}:{ports[name]}")
            summaries[name] = result.summary()
    finally:
        workload.workload_reset(prefix=WORKLOAD_PREFIX)
    rates = [summaries[n]["requests_per_s"] for n in ("cached", "uncached")]
    return {
        "requests": requests,
        "write_fraction": cfg.write_fraction,
        "servers": summaries,
        "cached_over_uncached": round(rates[0] / rates[1], 3) if all(rates) else None,
    }


TABLE = TextTable(
    [
        ("row", 15, "<"),
        ("server", 11, "<"),
        ("path", 28, "<"),
        ("req/s", 9, ">"),
        ("p50 ms", 9, ">"),
        ("p95 ms", 9, ">"),
        ("ok", 7, ">"),
        ("errors", 7, ">"),
    ]
)


def table(result: dict) -> str:
    s, data = result["settings"], result["data"]
    lines = [
        "",
        f"Nexus cache bench  {result['timestamp']}  (GET {result['endpoints']['cached']['path']}: a poll with "
        f"{data['poll_votes']:,} of {data['total_votes']:,} votes; {s['rounds']} rounds x {s['requests_per_round']} "
        f"requests, {s['concurrency']} clients, gunicorn {s['gunicorn_workers']} sync workers per server, "
        f"{result['environment']['cpu_count']} CPUs, request logging off)",
        "",
        *TABLE.head(),
    ]
    for name, row in result["endpoints"].items():
        rps, p50, p95 = (fmt(row[k], d) for k, d in (("requests_per_s", 1), ("p50_ms", 2), ("p95_ms", 2)))
        errors = sum(row["errors"].values())
        lines.append(TABLE.row(name, SERVERS[name], row["path"], rps, p50, p95, row["ok"], errors))
    lines.append("")
    labels = {
        "cached_over_uncached": "cached / uncached",
        "cached_over_uncached_count": "cached / uncached_count",
        "cached_over_bare": "cached / bare",
    }
    for key, label in labels.items():
        value, target = result["ratios"][key], result["targets"][key]
        verdict = "n/a" if value is None else ("meets" if value >= target else "below")
        lines.append(f"  {label:<24} throughput x{fmt(value, 2)}  (target >= {target:g}: {verdict})")
    ceiling = result["ratios"].get("bare_over_uncached")
    if ceiling is not None:
        lines.append(f"  bare / uncached          throughput x{fmt(ceiling, 2)}  ({CEILING_NOTE})")
    lines.append("  (medians of per-round ratios; compare ratios, not absolute numbers, across machines)")
    mixed = result.get("workload")
    if mixed:
        lines += [
            "",
            f"  mixed workload ({mixed['requests']} requests per server, {mixed['write_fraction']:.0%} votes, "
            "Zipf over 12 polls, seeded):",
            "  {:<9} {:>9} {:>9} {:>12} {:>12} {:>7} {:>7}".format(
                "server", "req/s", "hit ratio", "hit p50 ms", "read p50 ms", "stale", "errors"
            ),
        ]
        for name, summary in mixed["servers"].items():
            latency = summary["latency_ms"]
            hit_p50 = latency.get("hit", {}).get("p50")
            read_p50 = summary["read_latency_ms"].get("p50")
            lines.append(
                f"  {name:<9} {fmt(summary['requests_per_s'], 1):>9} {fmt(summary['hit_ratio'], 3):>9} "
                f"{fmt(hit_p50, 2):>12} {fmt(read_p50, 2):>12} {summary['stale_reads']:>7} "
                f"{sum(summary['errors'].values()):>7}"
            )
        lines.append(f"  cached / uncached (mixed)  throughput x{fmt(mixed['cached_over_uncached'], 2)}")
    return "\n".join(lines)
