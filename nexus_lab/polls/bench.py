"""Measuring the counting strategies: read latency, write throughput, concurrent votes (``manage.py bench_votes``).

The notebook ``01-schema-design`` and the benchmark command call these; the tests call :func:`race_votes`.
Every figure is measured in one run, strategies interleaved round by round (the machine is shared and noisy, so a
ratio measured side by side means more than any absolute number), and reported as medians and 95th percentiles.

- :func:`time_reads`: ``Strategy.option_counts`` (the results query alone), per strategy.
- :func:`time_endpoint`: ``GET /api/polls/{id}/results/`` through Django's full stack (middleware, URL routing,
  DRF, JSON) in-process with the test ``Client``, under :func:`counting.using`, with any response cache off.
- :func:`time_writes`: ``services.vote_cast`` one vote after another, each in its own transaction (so each pays a
  commit), per strategy's write path; and the same from several threads at once on one option (contention).
- :func:`race_votes`: many ``vote_cast`` calls at once from threads, each with its own database connection.
- :func:`time_concurrent`: :func:`race_votes` on one option of a fresh poll per race, at each thread count, every
  strategy in alternating rounds while a thread folds the ``delta`` strategy's pending votes as the beat task would;
  reported as the median of each round's ratio to ``count`` (measured in the same round).
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection, connections

from nexus_backend.core.exceptions import DomainError
from nexus_backend.polls import counting, services
from nexus_lab.benchmark import percentile

STRATEGY_NAMES = tuple(counting.STRATEGIES)


def latency_summary(seconds: Sequence[float]) -> dict:
    return {
        "n": len(seconds),
        "median_ms": round(statistics.median(seconds) * 1000, 4) if seconds else None,
        "p95_ms": round(percentile(seconds, 0.95) * 1000, 4) if seconds else None,
    }


def _interleaved(names: Sequence[str], rounds: int) -> Iterable[tuple[int, str]]:
    """Round-robin order, rotated every round and reversed on odd rounds, so no strategy always goes first or
    after the same neighbour (the rule of ``core.benchmark.alternate_rounds``)."""
    for r in range(rounds):
        shift = r % len(names)
        order = [*names[shift:], *names[:shift]]
        if r % 2:
            order.reverse()
        for name in order:
            yield r, name


def time_reads(*, poll_id: int, strategies: Sequence[str] = STRATEGY_NAMES, repeats: int = 50) -> dict:
    """Seconds per results query for each strategy (``repeats`` each, interleaved, after one warm-up)."""
    chosen = [counting.get_strategy(n) for n in strategies]
    for s in chosen:
        s.option_counts(poll_id=poll_id)  # warm-up: plan cache, buffers
    times: dict[str, list[float]] = {s.name: [] for s in chosen}
    for _, name in _interleaved([s.name for s in chosen], repeats):
        strategy = counting.STRATEGIES[name]
        start = time.perf_counter()
        strategy.option_counts(poll_id=poll_id)
        times[name].append(time.perf_counter() - start)
    return times


@contextlib.contextmanager
def _response_cache_off():
    """The results endpoint may be cached (nexus_backend.caching); measure the database path, not the cache."""
    from django.conf import settings
    from django.test import override_settings

    config = getattr(settings, "NEXUS_CACHE", None)
    if isinstance(config, dict):
        with override_settings(NEXUS_CACHE={**config, "ENABLED": False}):
            yield
    else:
        yield


def time_endpoint(*, poll_id: int, strategies: Sequence[str] = STRATEGY_NAMES, repeats: int = 50) -> dict:
    """Seconds per ``GET /api/polls/{id}/results/`` (Django test client, in-process) under each strategy.

    Returns ``{"times": {name: [...]}, "cache_headers": Counter of X-Cache values seen}``; a ``hit`` there means
    some response came from a cache and the figure is not the uncached one."""
    from django.test import Client

    client = Client()
    url = f"/api/polls/{poll_id}/results/"
    times: dict[str, list[float]] = {n: [] for n in strategies}
    cache_headers: Counter[str] = Counter()
    with _response_cache_off():
        for name in strategies:
            with counting.using(name):
                response = client.get(url)  # warm-up
                if response.status_code != 200:
                    raise RuntimeError(f"GET {url} answered {response.status_code}: {response.content[:200]!r}")
        for _, name in _interleaved(list(strategies), repeats):
            with counting.using(name):
                start = time.perf_counter()
                response = client.get(url)
                times[name].append(time.perf_counter() - start)
            cache_headers[response.headers.get("X-Cache", "-").lower()] += 1
    return {"times": times, "cache_headers": dict(cache_headers)}


@dataclass
class RaceResult:
    outcomes: Counter  # "created", "already_voted", "poll_closed", "invalid", "not_found", "error:<Type>"
    seconds: float

    @property
    def created(self) -> int:
        return self.outcomes.get("created", 0)

    @property
    def votes_per_second(self) -> float:
        return self.created / self.seconds if self.seconds > 0 else 0.0


def race_votes(
    *,
    poll_id: int,
    ballots: Sequence[tuple[int, int]],
    workers: int = 8,
    strategy: str | None = None,
    start_together: bool = True,
) -> RaceResult:
    """Cast ``ballots`` (``(user id, option id)`` pairs) through ``services.vote_cast`` from ``workers`` threads at
    once, each thread on its own database connection; a barrier releases them together (``start_together``).

    Returns how each attempt ended, and the seconds from the release (or the start, without the barrier) to the last
    vote: connecting and disconnecting are not timed. Threads close their connections before returning."""
    if not 1 <= workers <= 64:
        raise ValueError(f"workers must be from 1 to 64, got {workers}")
    User = get_user_model()
    lanes = [list(ballots[i::workers]) for i in range(workers)]
    lanes = [lane for lane in lanes if lane]
    released: list[float] = []
    finished: list[float] = []
    barrier = (
        threading.Barrier(len(lanes), action=lambda: released.append(time.perf_counter()))
        if start_together and lanes
        else None
    )

    def run(lane: list[tuple[int, int]]) -> Counter:
        outcomes: Counter[str] = Counter()
        try:
            close_old_connections()
            connection.ensure_connection()  # connect before the barrier: the race is between votes, not logins
            if barrier is not None:
                barrier.wait(timeout=60)
            for user_id, option_id in lane:
                try:
                    services.vote_cast(poll_id=poll_id, option_id=option_id, user=User(pk=user_id), strategy=strategy)
                    outcomes["created"] += 1
                except DomainError as exc:
                    outcomes[exc.code] += 1
                except Exception as exc:  # noqa: BLE001 (reported, not hidden: the caller asserts on outcomes)
                    outcomes[f"error:{type(exc).__name__}"] += 1
            finished.append(time.perf_counter())
        finally:
            connections.close_all()
        return outcomes

    start = time.perf_counter()
    total: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=len(lanes) or 1, thread_name_prefix="vote-race") as pool:
        for outcome in pool.map(run, lanes):
            total.update(outcome)
    end = max(finished, default=time.perf_counter())
    return RaceResult(outcomes=total, seconds=end - (released[0] if released else start))


def time_writes(
    *,
    poll_ids: dict[str, int],
    option_ids: dict[str, list[int]],
    user_ids: Sequence[int],
    votes: int = 200,
    rounds: int = 3,
    on_progress: Callable[[int], object] | None = None,
) -> dict[str, list[float]]:
    """Votes per second for each strategy's write path: ``votes`` sequential ``vote_cast`` calls per round,
    strategies interleaved, in ``poll_ids[name]`` (a fresh poll per strategy) by distinct ``user_ids``.
    Each strategy needs ``votes * rounds`` users; options are used in turn. Returns per-round rates."""
    User = get_user_model()
    need = votes * rounds
    if len(user_ids) < need:
        raise ValueError(f"time_writes needs {need} users ({votes} votes x {rounds} rounds), got {len(user_ids)}")
    rates: dict[str, list[float]] = {name: [] for name in poll_ids}
    for r, name in _interleaved(list(poll_ids), rounds):
        voters = user_ids[r * votes : (r + 1) * votes]
        options = option_ids[name]
        start = time.perf_counter()
        for i, user_id in enumerate(voters):
            services.vote_cast(
                poll_id=poll_ids[name], option_id=options[i % len(options)], user=User(pk=user_id), strategy=name
            )
        rates[name].append(len(voters) / (time.perf_counter() - start))
        if on_progress:
            on_progress(len(voters))
    return rates


@contextlib.contextmanager
def _every(interval: float, step: Callable[[], None], *, name: str) -> Iterator[None]:
    """Call ``step()`` every ``interval`` seconds in a thread (its own database connection) while the block runs."""
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.wait(interval):
                step()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


@contextlib.contextmanager
def folding(interval: float | None = None) -> Iterator[list[int]]:
    """Run :func:`counting.deltas_fold` every ``interval`` seconds (default ``POLLS_DELTA_FOLD_SECONDS``) in a
    thread for the duration of the block, as the beat task does in production; yields the list of folded counts."""
    from django.conf import settings

    folded: list[int] = []

    def fold() -> None:
        n = counting.deltas_fold()
        if n is not None:
            folded.append(n)

    every = interval if interval is not None else getattr(settings, "POLLS_DELTA_FOLD_SECONDS", 1.0)
    with _every(every, fold, name="vote-delta-fold"):
        yield folded


def time_concurrent(
    *,
    strategies: Sequence[str],
    prefix: str,
    user_ids: Sequence[int],
    workers: Sequence[int] = (8,),
    votes: int = 400,
    rounds: int = 3,
) -> dict:
    """Concurrent votes per second for each strategy at each thread count: per round and strategy, ``votes``
    votes (``user_ids[:votes]``) for the first option of a fresh poll from ``workers`` threads released together;
    strategies alternate round by round (:func:`_interleaved`) while :func:`folding` runs.

    Returns ``{threads: {name: {"rates": [...], "outcomes": Counter, "poll_ids": [...]}}}``; :func:`concurrent_summary`
    turns it into medians and ratios to ``count``."""
    if len(user_ids) < votes:
        raise ValueError(f"time_concurrent needs {votes} users, got {len(user_ids)}")
    measured: dict[int, dict] = {}
    with folding():
        for w in workers:
            per: dict[str, dict[str, Any]] = {
                n: {"rates": [], "outcomes": Counter(), "poll_ids": []} for n in strategies
            }
            for r, name in _interleaved(list(strategies), rounds):
                (poll_id, option_ids), *_ = fresh_polls(strategies=[name], prefix=prefix, label=f"{w}thr r{r}").values()
                race = race_votes(
                    poll_id=poll_id, ballots=[(u, option_ids[0]) for u in user_ids[:votes]], workers=w, strategy=name
                )
                per[name]["rates"].append(race.votes_per_second)
                per[name]["outcomes"].update(race.outcomes)
                per[name]["poll_ids"].append(poll_id)
            measured[w] = per
    _settle_counters({n: [p for per in measured.values() for p in per[n]["poll_ids"]] for n in strategies})
    return measured


def _settle_counters(poll_ids: dict[str, list[int]]) -> None:
    """Rebuild the counters of the polls voted on through a write path that skips them (``count``, ``summary``), so
    that every count is right again once measured (deleting those votes later must not drive a counter negative)."""
    skipped = [p for name, ids in poll_ids.items() if counting.get_strategy(name).on_vote == "nothing" for p in ids]
    if skipped:
        counting.counters_rebuild(poll_ids=skipped)


def concurrent_summary(measured: dict, *, baseline: str = "count") -> dict:
    """``{name: {threads: {"votes_per_s", "x_count", "per_round_x_count"}}}`` from :func:`time_concurrent`: the
    median rate, and the median of the per-round ratios to ``baseline`` (paired: both measured in one round)."""
    out: dict[str, dict] = {}
    for w, per in measured.items():
        base = per.get(baseline, {}).get("rates")
        for name, data in per.items():
            ratios = [round(a / b, 3) for a, b in zip(data["rates"], base, strict=True) if b] if base else []
            out.setdefault(name, {})[str(w)] = {
                "votes_per_s": round(statistics.median(data["rates"]), 1),
                "x_count": round(statistics.median(ratios), 3) if ratios else None,
                "per_round_x_count": ratios,
            }
    return out


def counts_exact(*, strategy: str, poll_ids: Sequence[int]) -> list[int]:
    """The polls among ``poll_ids`` where ``strategy``'s counts differ from ``COUNT(*)`` per option. Call it when
    no vote is in flight on those polls (the two reads are two statements)."""
    chosen = counting.get_strategy(strategy)
    return [p for p in poll_ids if chosen.option_counts(poll_id=p) != counting.COUNT.option_counts(poll_id=p)]


_LOCK_WAITS_SQL = """
    SELECT wait_event, COUNT(*) FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
    GROUP BY wait_event
"""


@contextlib.contextmanager
def watching_locks(interval: float = 0.005) -> Iterator[dict]:
    """Sample ``pg_stat_activity`` every ``interval`` seconds from a thread (its own connection) while the block
    runs: how many backends of this database wait on a heavyweight lock (``wait_event_type = 'Lock'``; the
    ``wait_event`` says which kind: ``transactionid`` is "waiting for the transaction holding the row to end",
    ``tuple`` is "queued for the row behind other waiters"). The yielded dict is filled when the block ends:
    ``samples``, ``mean_waiting``, ``max_waiting``, ``by_event`` (backend-samples per wait event)."""
    waiting: list[int] = []
    by_event: Counter[str] = Counter()
    stats: dict = {}

    def sample() -> None:
        with connection.cursor() as cursor:
            cursor.execute(_LOCK_WAITS_SQL)
            rows = cursor.fetchall()
        waiting.append(sum(n for _, n in rows))
        by_event.update({event: n for event, n in rows})

    try:
        with _every(interval, sample, name="lock-watch"):
            yield stats
    finally:
        stats.update(
            samples=len(waiting),
            mean_waiting=round(statistics.mean(waiting), 2) if waiting else 0.0,
            max_waiting=max(waiting, default=0),
            by_event=dict(by_event),
        )


def lock_waits(*, strategies: Sequence[str], prefix: str, user_ids: Sequence[int], workers: int, votes: int) -> dict:
    """For each strategy, one race of ``votes`` votes on one option of a fresh poll from ``workers`` threads, while
    :func:`watching_locks` samples the lock waits: ``{name: {"votes_per_s", "outcomes", **lock statistics}}``."""
    out = {}
    for name in strategies:
        (poll_id, option_ids), *_ = fresh_polls(strategies=[name], prefix=prefix, label="lock waits").values()
        with folding(), watching_locks() as waits:
            race = race_votes(
                poll_id=poll_id, ballots=[(u, option_ids[0]) for u in user_ids[:votes]], workers=workers, strategy=name
            )
        out[name] = {"votes_per_s": round(race.votes_per_second, 1), "outcomes": dict(race.outcomes), **waits}
        _settle_counters({name: [poll_id]})
    return out


# --------------------------------------------------------------------------- one scale, every measurement


def prefix_user_ids(prefix: str) -> list[int]:
    """Ids of the users ``prefix`` owns, in username order (the generator's users: ``<prefix>u0000001`` …)."""
    users = get_user_model().objects.filter(username__startswith=prefix).order_by("username")
    return list(users.values_list("pk", flat=True))


def fresh_polls(*, strategies: Sequence[str], prefix: str, label: str) -> dict[str, tuple[int, list[int]]]:
    """One new poll per strategy (4 options, owned by ``prefix``'s first user): ``{name: (poll id, option ids)}``."""
    owner = get_user_model().objects.filter(username__startswith=prefix).order_by("username").first()
    if owner is None:
        raise ValueError(f"no users with the prefix {prefix!r}: generate data first")
    polls = {}
    for name in strategies:
        poll = services.poll_create(owner=owner, question=f"Benchmark {label} writes ({name})", options=list("ABCD"))
        polls[name] = (poll.pk, list(poll.options.order_by("position").values_list("pk", flat=True)))
    return polls


def measure_scale(
    *,
    votes: int,
    strategies: Sequence[str] = STRATEGY_NAMES,
    repeats: int = 50,
    write_votes: int = 100,
    write_rounds: int = 2,
    workers: Sequence[int] = (8,),
    concurrent_votes: int = 200,
    concurrent_rounds: int = 3,
    seed: int = 0,
    prefix: str = "bench_",
    polls: int | None = None,
    options: int = 4,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Generate ``votes`` votes (``datagen``), then measure every strategy on the hottest poll: the results query
    and the endpoint (median, p95), one summary refresh, sequential and concurrent write throughput. Returns one
    JSON-ready dict (what ``bench_votes`` saves; :func:`rows_frame` flattens a list of them).

    Writes go to fresh polls, by the generated users; the counters they skipped are rebuilt before returning."""
    from tqdm import tqdm

    from nexus_lab.polls import datagen

    say = log or (lambda line: None)
    names = [counting.get_strategy(n).name for n in strategies]
    made = datagen.generate(votes=votes, polls=polls, options=options, seed=seed, prefix=prefix, progress=progress)
    say(
        f"generated {made.votes:,} votes, {made.polls:,} polls, {made.users:,} users in {made.seconds:.1f} s; "
        f"hottest poll {made.hot_poll_id} has {made.hot_poll_votes:,} votes"
    )
    row: dict = {
        "votes": made.votes,
        "polls": made.polls,
        "users": made.users,
        "hot_poll_id": made.hot_poll_id,
        "hot_poll_votes": made.hot_poll_votes,
        "generate_s": made.seconds,
        "strategies": {},
    }

    say("reads: the results query, then the endpoint")
    reads = time_reads(poll_id=made.hot_poll_id, strategies=names, repeats=repeats)
    endpoint = time_endpoint(poll_id=made.hot_poll_id, strategies=names, repeats=repeats)
    row["endpoint_cache_headers"] = endpoint["cache_headers"]
    refreshes = [t for t in (counting.summary_refresh() for _ in range(3)) if t is not None]
    row["summary_refresh_ms"] = round(statistics.median(refreshes) * 1000, 2) if refreshes else None

    say("writes: sequential, then concurrent on one option")
    users = prefix_user_ids(prefix)
    sequential = fresh_polls(strategies=names, prefix=prefix, label="sequential")
    need = write_votes * write_rounds
    with tqdm(total=need * len(names), unit="vote", disable=not progress, leave=False) as bar:
        rates = time_writes(
            poll_ids={n: p[0] for n, p in sequential.items()},
            option_ids={n: p[1] for n, p in sequential.items()},
            user_ids=users[:need],
            votes=write_votes,
            rounds=write_rounds,
            on_progress=bar.update,
        )
    say(f"concurrent votes on one option: {', '.join(map(str, workers))} threads, {concurrent_rounds} rounds")
    contended = time_concurrent(
        strategies=names,
        prefix=prefix,
        user_ids=users,
        workers=workers,
        votes=concurrent_votes,
        rounds=concurrent_rounds,
    )
    concurrent = concurrent_summary(contended)
    # The reads again, with the delta table as the storm left it (up to one fold interval of votes pending, and
    # the pages concurrent inserts spread them over): what a reader pays while a poll is hot.
    row["pending_deltas_after_concurrent_votes"] = counting.deltas_pending()
    reads_after = time_reads(poll_id=made.hot_poll_id, strategies=names, repeats=repeats)
    contended_polls = {n: [p for per in contended.values() for p in per[n]["poll_ids"]] for n in names}
    if "summary" in names:
        counting.summary_refresh()
    # The exactness check: every fresh strategy's counts equal COUNT(*) per option on every poll it was raced on.
    row["counts_wrong_after_concurrent_votes"] = {
        n: len(counts_exact(strategy=n, poll_ids=contended_polls[n])) for n in names if n != "count"
    }
    write_polls = [p[0] for p in sequential.values()] + [p for n in names for p in contended_polls[n]]
    counting.counters_rebuild(poll_ids=write_polls)  # the count/summary write paths skipped the counter
    row["write_poll_ids"] = write_polls
    # Leave the tables settled, as autovacuum eventually would: fresh statistics, and a visibility map that lets
    # index-only scans skip the pages these writes touched (plans read afterwards depend on both).
    datagen.refresh_statistics(vacuum=True)

    for name in names:
        row["strategies"][name] = {
            "query": latency_summary(reads[name]),
            "query_after_concurrent_votes": latency_summary(reads_after[name]),
            "endpoint": latency_summary(endpoint["times"][name]),
            "votes_per_s_sequential": round(statistics.median(rates[name]), 1),
            # at the largest thread count (the hottest case); every count is in concurrent_by_workers
            "votes_per_s_concurrent": concurrent[name][str(max(workers))]["votes_per_s"],
            "concurrent_by_workers": concurrent[name],
            "concurrent_outcomes": dict(sum((per[name]["outcomes"] for per in contended.values()), Counter())),
            "fresh": counting.STRATEGIES[name].fresh,
        }
    if "count" in row["strategies"]:
        base = row["strategies"]["count"]
        for data in row["strategies"].values():
            data["endpoint_speedup_vs_count"] = _ratio(base["endpoint"]["median_ms"], data["endpoint"]["median_ms"])
            data["query_speedup_vs_count"] = _ratio(base["query"]["median_ms"], data["query"]["median_ms"])
            data["query_after_concurrent_votes_speedup_vs_count"] = _ratio(
                base["query_after_concurrent_votes"]["median_ms"], data["query_after_concurrent_votes"]["median_ms"]
            )
    return row


def _ratio(base, value) -> float | None:
    if not base or not value:
        return None
    return round(base / value, 2)


def rows_frame(scales: Iterable[dict]):
    """One row per (scale, strategy) from :func:`measure_scale` results, as a pandas DataFrame."""
    import pandas as pd

    rows = []
    for scale in scales:
        for name, d in scale["strategies"].items():
            rows.append(
                {
                    "votes": scale["votes"],
                    "hot_poll_votes": scale["hot_poll_votes"],
                    "strategy": name,
                    "query_p50_ms": d["query"]["median_ms"],
                    "query_p95_ms": d["query"]["p95_ms"],
                    "api_p50_ms": d["endpoint"]["median_ms"],
                    "api_p95_ms": d["endpoint"]["p95_ms"],
                    "api_x_count": d.get("endpoint_speedup_vs_count"),
                    "votes_per_s_seq": d["votes_per_s_sequential"],
                    "votes_per_s_concurrent": d["votes_per_s_concurrent"],
                    "fresh": d["fresh"],
                }
            )
    return pd.DataFrame(rows)


def concurrent_frame(scales: Iterable[dict]):
    """One row per (scale, strategy, threads) from :func:`measure_scale` results: concurrent votes/s on one option
    and its paired ratio to ``count``, as a pandas DataFrame."""
    import pandas as pd

    rows = []
    for scale in scales:
        for name, d in scale["strategies"].items():
            for threads, c in d["concurrent_by_workers"].items():
                rows.append(
                    {
                        "votes": scale["votes"],
                        "strategy": name,
                        "threads": int(threads),
                        "votes_per_s": c["votes_per_s"],
                        "x_count": c["x_count"],
                    }
                )
    return pd.DataFrame(rows)
