"""A reproducible load against the poll API: who reads what, who votes where, and what the cache answered.

    fixture = workload_setup(polls=12, voters=300, seed=7)        # users and polls owned by prefix "wl_"
    result = run_workload(WorkloadConfig(requests=500, concurrency=4), fixture)
    result.summary()       # counts, hit ratio, latency percentiles by cache outcome, stale reads
    result.frame()         # one row per request (pandas), for charts

The same driver serves the notebook (in-process, through Django's test client: the whole HTTP stack without a
socket), the benchmark and ``manage.py run_workload`` (either in-process or ``--url`` against a running server).

**What is seeded.** The list of operations is drawn before anything runs from ``random.Random(seed)``: each is a
vote (``write_fraction``) or a read of a poll's results, detail or the poll list (``read_mix``), and polls are
picked with Zipf popularity (the poll of rank *k* with weight ``1 / k**skew``: ``skew=0`` is uniform). Votes are
assigned to voters who have not voted in that poll yet. With ``concurrency=1`` a run is deterministic; with more
workers the operations are the same, their interleaving is not.

**What is recorded**, per request: start time, latency, status, the ``X-Cache`` header, and for results reads
whether the answer was *stale*: it counted fewer votes than the poll had before the run plus the votes this run
had already seen acknowledged (201) when the read started. That is a lower bound every correct cache meets, so
``stale`` must be 0 under the ``precise`` invalidation strategy.
"""

from __future__ import annotations

import bisect
import http.client
import itertools
import json
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import cast
from urllib.parse import urlsplit

from django.db import connections

from nexus_lab.benchmark import percentile

DEFAULT_PREFIX = "wl_"
READ_KINDS = ("results", "detail", "list")
CACHED_OUTCOMES = ("hit", "miss", "coalesced")  # a lookup happened (what the namespace counters count)
LIST_PATH = "/api/polls/?page_size=20"


@dataclass(frozen=True)
class WorkloadConfig:
    requests: int | None = 500  # operations to run (None: until `duration` ends)
    duration: float | None = None  # seconds; with `requests` too, whichever comes first
    concurrency: int = 4  # worker threads (in-process) or connections (HTTP)
    seed: int = 7
    skew: float = 1.1  # Zipf exponent of poll popularity (0: uniform)
    write_fraction: float = 0.1  # share of operations that are votes
    read_mix: tuple[tuple[str, float], ...] = (("results", 0.6), ("detail", 0.3), ("list", 0.1))

    def __post_init__(self):
        if self.requests is None and self.duration is None:
            raise ValueError("give requests, duration or both")
        if self.requests is not None and self.requests < 1:
            raise ValueError("requests must be at least 1")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be positive")
        if not 1 <= self.concurrency <= 64:
            raise ValueError("concurrency must be between 1 and 64")
        if not 0 <= self.write_fraction <= 1:
            raise ValueError("write_fraction must be between 0 and 1")
        if self.skew < 0:
            raise ValueError("skew must be >= 0")
        mix = dict(self.read_mix)
        if set(mix) - set(READ_KINDS) or any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
            raise ValueError(f"read_mix: weights >= 0 for {', '.join(READ_KINDS)}, not all zero")
        object.__setattr__(self, "read_mix", tuple((k, float(mix.get(k, 0.0))) for k in READ_KINDS))


def parse_read_mix(text: str) -> tuple[tuple[str, float], ...]:
    """``results=0.6,detail=0.3,list=0.1`` -> the ``read_mix`` tuple."""
    pairs = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        pairs.append((name.strip(), float(weight)))
    return tuple(pairs)


# --------------------------------------------------------------------------- fixture


@dataclass
class WorkloadFixture:
    """Polls in popularity order (``poll_ids[0]`` is the hottest), their options, and voters with JWTs.
    ``next_voter`` remembers, per poll, the first voter who has not voted there yet (across runs)."""

    poll_ids: list[int]
    options: dict[int, list[int]]
    voters: list[tuple[int, str]]  # (user id, access token)
    prefix: str = DEFAULT_PREFIX
    next_voter: dict[int, int] = field(default_factory=dict)


def workload_reset(*, prefix: str = DEFAULT_PREFIX) -> dict:
    """Remove the users named ``<prefix>…`` with their polls and votes (through the services)."""
    from nexus_backend.polls.demo import demo_reset

    return demo_reset(prefix=prefix)


def workload_setup(
    *,
    polls: int = 12,
    voters: int = 300,
    seed: int = 7,
    prefix: str = DEFAULT_PREFIX,
    poll_ids: Sequence[int] | None = None,
    reset: bool = True,
) -> WorkloadFixture:
    """Create ``voters`` users (unusable passwords; access tokens minted directly) and ``polls`` polls through
    ``services.poll_create``, all owned by ``prefix``. With ``poll_ids``, use those existing polls instead (e.g.
    the 1M-vote data of ``manage.py gen_votes``), hottest first."""
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    from nexus_backend.polls import services
    from nexus_backend.polls.models import Option

    if reset:
        workload_reset(prefix=prefix)
    rng = random.Random(seed)
    User = get_user_model()
    names = [f"{prefix}{i:05d}" for i in range(voters + 1)]
    existing = {u.username: u for u in User.objects.filter(username__in=names)}
    User.objects.bulk_create(
        [User(username=n, email=f"{n}@example.invalid", password="!nexus-workload") for n in names if n not in existing]
    )
    users = list(User.objects.filter(username__in=names).order_by("username"))
    owner, crowd = users[0], users[1:]
    if poll_ids is None:
        poll_ids = []
        for i in range(polls):
            texts = [f"Choice {chr(65 + j)}" for j in range(rng.randint(2, 5))]
            poll_ids.append(services.poll_create(owner=owner, question=f"Workload poll {i + 1}?", options=texts).pk)
    poll_ids = list(poll_ids)
    options: dict[int, list[int]] = {p: [] for p in poll_ids}
    for option_id, poll_id in (
        Option.objects.filter(poll_id__in=poll_ids).order_by("position", "id").values_list("id", "poll_id")
    ):
        options[poll_id].append(option_id)
    return WorkloadFixture(
        poll_ids=poll_ids,
        options=options,
        voters=[(u.pk, str(AccessToken.for_user(u))) for u in crowd],
        prefix=prefix,
    )


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Operation:
    seq: int
    kind: str  # vote | results | detail | list
    rank: int  # popularity rank of the poll (0 = hottest); -1 for the list
    poll_id: int | None
    option_id: int | None = None
    voter: int | None = None  # index into fixture.voters


class OperationSource:
    """Draws operations from the seeded generator (thread-safe, in order)."""

    def __init__(self, config: WorkloadConfig, fixture: WorkloadFixture):
        self.config = config
        self.fixture = fixture
        self.rng = random.Random(config.seed)
        weights = [1.0 / (k + 1) ** config.skew for k in range(len(fixture.poll_ids))]
        self.cumulative = list(itertools.accumulate(weights))
        self.read_kinds = [k for k, w in config.read_mix if w > 0]
        self.read_cumulative = list(itertools.accumulate(w for _, w in config.read_mix if w > 0))
        self.lock = threading.Lock()
        self.seq = itertools.count()
        self.exhausted = 0  # votes turned into results reads: every voter had voted in that poll

    def _rank(self) -> int:
        return bisect.bisect_left(self.cumulative, self.rng.random() * self.cumulative[-1])

    def next(self) -> Operation:
        with self.lock:
            seq = next(self.seq)
            rank = self._rank()
            poll_id = self.fixture.poll_ids[rank]
            if self.rng.random() < self.config.write_fraction:
                voters = len(self.fixture.voters)
                used = self.fixture.next_voter.get(poll_id, 0)
                options = self.fixture.options.get(poll_id) or []
                choice = self.rng.randrange(len(options)) if options else 0
                if used < voters and options:
                    self.fixture.next_voter[poll_id] = used + 1
                    # Each poll starts at its own offset in the crowd, so no voter votes in many polls at once
                    # (the per-user vote rate limit stays out of the way).
                    voter = (rank * voters // len(self.fixture.poll_ids) + used) % voters
                    return Operation(seq, "vote", rank, poll_id, options[choice], voter)
                self.exhausted += 1
                return Operation(seq, "results", rank, poll_id)
            pick = self.rng.random() * self.read_cumulative[-1]
            kind = self.read_kinds[bisect.bisect_left(self.read_cumulative, pick)]
            if kind == "list":
                return Operation(seq, "list", -1, None)
            return Operation(seq, kind, rank, poll_id)


def _path(op: Operation) -> str:
    if op.kind == "list":
        return LIST_PATH
    if op.kind == "vote":
        return f"/api/polls/{op.poll_id}/vote/"
    if op.kind == "results":
        return f"/api/polls/{op.poll_id}/results/"
    return f"/api/polls/{op.poll_id}/"


# --------------------------------------------------------------------------- transports


class InProcessTransport:
    """Django's test client: URL routing, middleware, authentication, views, exception handler — no socket."""

    name = "in-process"

    def __init__(self):
        from django.test import Client

        self.client = Client(raise_request_exception=False)

    def request(self, method: str, path: str, token: str | None = None, body: dict | None = None, client_ip: str = ""):
        headers = {"authorization": f"Bearer {token}"} if token else {}
        if client_ip:
            headers["remote-addr"] = client_ip
        if method == "POST":
            response = self.client.post(
                path, data=json.dumps(body or {}), content_type="application/json", **_meta(headers)
            )
        else:
            response = self.client.get(path, **_meta(headers))
        return response.status_code, response.headers.get("X-Cache", ""), response.content

    def close(self) -> None:
        connections.close_all()  # this thread's database connections


def _meta(headers: dict) -> dict:
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k != "remote-addr"}
    if "remote-addr" in headers:
        meta["REMOTE_ADDR"] = headers["remote-addr"]
    return meta


def simulated_ip(index: int) -> str:
    """A distinct private address per simulated client (in-process runs), so per-IP rate limits see many
    clients, as they would in production, rather than one machine sending everything."""
    return f"10.77.{index // 250 % 250}.{index % 250 + 1}"


class HttpTransport:
    """``http.client`` to a running server (keep-alive when the server allows it). Loopback or any URL you own."""

    name = "http"

    def __init__(self, base_url: str, timeout: float = 30.0):
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected an http://host:port URL, got {base_url!r}")
        self.host, self.port, self.timeout = parts.hostname, parts.port or 80, timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, token: str | None = None, body: dict | None = None, client_ip: str = ""):
        headers = {"Accept": "application/json"}  # client_ip: a real socket has its own address
        payload = None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if method == "POST":
            payload = json.dumps(body or {}).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                content = response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                self.close()
            return response.status, response.getheader("X-Cache", ""), content
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --------------------------------------------------------------------------- running


@dataclass
class RequestRecord:
    seq: int
    worker: int
    kind: str
    rank: int
    poll_id: int | None
    started: float  # seconds since the run started
    latency_ms: float
    status: int
    cache: str  # the X-Cache header ("" when the endpoint has none, e.g. votes)
    total_votes: int | None = None  # results reads
    expected_min: int | None = None  # votes the answer must at least count
    stale: bool | None = None


@dataclass
class WorkloadResult:
    config: WorkloadConfig
    transport: str
    records: list[RequestRecord]
    wall_s: float
    exhausted_votes: int = 0

    def frame(self):
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.records])

    def outcome_counts(self, kinds: Sequence[str] = READ_KINDS) -> Counter:
        return Counter(r.cache for r in self.records if r.kind in kinds and r.cache)

    def summary(self) -> dict:
        reads = [r for r in self.records if r.kind in READ_KINDS]
        votes = [r for r in self.records if r.kind == "vote"]
        outcomes = self.outcome_counts()
        hits = outcomes.get("hit", 0)
        misses = outcomes.get("miss", 0) + outcomes.get("coalesced", 0)
        latency = {}
        for outcome, group in _group([r for r in reads if r.cache], key=lambda r: r.cache).items():
            latency[outcome] = _percentiles([r.latency_ms for r in group])
        errors = Counter(
            r.status for r in self.records if r.status >= 400 and not (r.kind == "vote" and r.status == 409)
        )
        return {
            "transport": self.transport,
            "requests": len(self.records),
            "wall_s": round(self.wall_s, 3),
            "requests_per_s": round(len(self.records) / self.wall_s, 1) if self.wall_s > 0 else None,
            "by_kind": dict(Counter(r.kind for r in self.records)),
            "votes_accepted": sum(1 for r in votes if r.status == 201),
            "votes_refused": sum(1 for r in votes if r.status == 409),
            "votes_exhausted": self.exhausted_votes,
            "cache": dict(outcomes),
            "hits": hits,
            "misses": misses,
            "hit_ratio": hits / (hits + misses) if hits + misses else None,
            "stale_reads": sum(1 for r in reads if r.stale),
            "errors": {str(k): v for k, v in sorted(errors.items())},
            "latency_ms": latency,  # per X-Cache outcome
            "read_latency_ms": _percentiles([r.latency_ms for r in reads]),
        }


def _group(items, key) -> dict:
    groups: dict = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    p50, p95 = (round(percentile(values, q), 3) for q in (0.5, 0.95))
    return {"n": len(values), "p50": p50, "p95": p95, "mean": round(statistics.fmean(values), 3)}


def _current_totals(poll_ids: Sequence[int]) -> dict[int, int]:
    from nexus_backend.polls import selectors

    return {p: selectors.poll_results(poll_id=p).total_votes for p in poll_ids}


def run_workload(
    config: WorkloadConfig,
    fixture: WorkloadFixture,
    *,
    url: str | None = None,
    progress: bool = False,
    on_record: Callable[[RequestRecord], None] | None = None,
) -> WorkloadResult:
    """Run the workload in-process (``url=None``) or over HTTP against ``url``; return every request's record."""
    source = OperationSource(config, fixture)
    base = _current_totals(fixture.poll_ids)
    acked: Counter[int] = Counter()
    acked_lock = threading.Lock()
    records: list[RequestRecord] = []
    failures: list[BaseException] = []
    started = time.perf_counter()
    deadline = started + config.duration if config.duration else None
    remaining = itertools.count() if config.requests is None else iter(range(config.requests))
    remaining_lock = threading.Lock()
    bar = _progress_bar(config, progress)

    def more() -> bool:
        if deadline is not None and time.perf_counter() >= deadline:
            return False
        with remaining_lock:
            return next(remaining, None) is not None

    def worker(index: int) -> None:
        transport = HttpTransport(url) if url else InProcessTransport()
        try:
            while not failures and more():
                op = source.next()
                # Used only where set: a vote has a voter, a vote or results read a poll (OperationSource.next).
                voter, poll_id = cast(int, op.voter), cast(int, op.poll_id)
                token = fixture.voters[voter][1] if op.kind == "vote" else None
                body = {"option": op.option_id} if op.kind == "vote" else None
                expected = None
                if op.kind == "results":
                    with acked_lock:
                        expected = base[poll_id] + acked[poll_id]
                t0 = time.perf_counter()
                client = simulated_ip(voter if op.kind == "vote" else 60_000 + index)
                status, cache, content = transport.request("POST" if body else "GET", _path(op), token, body, client)
                latency = (time.perf_counter() - t0) * 1000
                total = None
                if op.kind == "results" and status == 200:
                    total = int(json.loads(content)["total_votes"])
                if op.kind == "vote" and status == 201:
                    with acked_lock:
                        acked[poll_id] += 1
                record = RequestRecord(
                    seq=op.seq,
                    worker=index,
                    kind=op.kind,
                    rank=op.rank,
                    poll_id=op.poll_id,
                    started=round(t0 - started, 6),
                    latency_ms=round(latency, 3),
                    status=status,
                    cache=cache,
                    total_votes=total,
                    expected_min=expected,
                    stale=None if total is None or expected is None else total < expected,
                )
                records.append(record)  # list.append is atomic under the GIL
                if on_record is not None:
                    on_record(record)
                if bar is not None:
                    bar.update(1)
        except Exception as exc:  # re-raised in the caller's thread below
            failures.append(exc)
        finally:
            transport.close()

    threads = [threading.Thread(target=worker, args=(i,), name=f"workload-{i}") for i in range(config.concurrency)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        if bar is not None:
            bar.close()
    if failures:
        raise failures[0]
    records.sort(key=lambda r: r.seq)
    return WorkloadResult(
        config=config,
        transport="http" if url else "in-process",
        records=records,
        wall_s=time.perf_counter() - started,
        exhausted_votes=source.exhausted,
    )


def _progress_bar(config: WorkloadConfig, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (CI logs)
    return tqdm(total=config.requests, unit="req", desc="workload", leave=False, disable=None)


def iter_windows(records: Sequence[RequestRecord], seconds: float) -> Iterator[tuple[float, list[RequestRecord]]]:
    """Records grouped by start time into consecutive windows of ``seconds`` (for hit ratio over time)."""
    if not records:
        return
    end = max(r.started for r in records)
    edge = 0.0
    ordered = sorted(records, key=lambda r: r.started)
    i = 0
    while edge <= end:
        group = []
        while i < len(ordered) and ordered[i].started < edge + seconds:
            group.append(ordered[i])
            i += 1
        yield edge, group
        edge += seconds
