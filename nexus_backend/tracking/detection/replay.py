"""Replay: the same detector over log files, in one process or spread over Celery workers.

- ``replay_file(path)``: parse (``parsers``), count identical requests, classify (``aggregate``), judge
  (``detector``). ``result.flagged`` is one ``Finding`` per flagged address.
- ``replay_distributed(path, chunks=n)``: the file is cut into ``n`` line ranges; each Celery task
  (``tracking.tasks.replay_chunk``) returns the partial per-IP aggregate of its range; they are merged here and
  judged once, which gives exactly what ``replay_file`` gives (aggregates merge exactly: counts add, sets unite).
- ``request_log_load`` / ``request_log_export_jsonl``: a log into ``RequestLog`` and back out as the app's JSONL.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from .aggregate import Aggregator
from .detector import Finding, _iso, by_ip, judge
from .parallel import aggregate_parallel, processes_for
from .parsers import ParseStats, Record, format_jsonl, no_gc, open_log
from .rules import RuleSet, load_rules

#: ``tracking.tasks.replay_chunk`` by its registered name (the tasks module imports this one, not the reverse).
REPLAY_CHUNK_TASK = "nexus_backend.tracking.tasks.replay_chunk"


@dataclass
class ReplayResult:
    path: str
    format: str
    stats: ParseStats
    rules: RuleSet
    aggregator: Aggregator
    findings: list[Finding]
    seconds: float
    chunks: int = 1
    verdicts: dict[str, Finding] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.verdicts = by_ip(self.findings)

    @property
    def flagged(self) -> dict[str, Finding]:
        return {ip: f for ip, f in self.verdicts.items() if f.flagged}

    @property
    def addresses(self) -> int:
        return len({ip for _, ip in self.aggregator.stats})

    def per_rule(self) -> dict[str, tuple[int, int, int]]:
        """rule -> (addresses that tripped it, flagged addresses among them, flagged by it alone), rules.yaml order."""
        out = {}
        for rule in self.rules.names:
            tripped = [f for f in self.verdicts.values() if rule in f.rules]
            if tripped:
                flagged = [f for f in tripped if f.flagged]
                out[rule] = (len(tripped), len(flagged), sum(1 for f in flagged if len(f.rules) == 1))
        return out

    def explain(self, ip: str, *, limit: int = 50) -> str:
        """The verdict on ``ip`` (an address, or the IPv6 /64 it belongs to) and the requests behind it, each with
        what the classifier saw in it: reads the log again."""
        key = self.aggregator.group(ip)
        verdict = self.verdicts.get(key)
        if verdict is None:
            seen = any(k == key for _, k in self.aggregator.stats)
            head = [f"{key}: " + ("in the log, tripped no rule" if seen else "not in the log")]
        else:
            head = [
                f"{key}: {'FLAGGED' if verdict.flagged else 'not flagged'}, score {verdict.score:.3f} "
                f"(threshold {self.rules.threshold}), rules {' '.join(verdict.rules)}",
                *(f"  {rule} ({verdict.scores.get(rule, 0):.2f}): {reason}"
                  for rule, reason in zip(verdict.rules, verdict.reasons, strict=True)),
                f"  evidence of its highest-scoring window: {json.dumps(verdict.evidence, default=str)[:2000]}",
            ]  # fmt: skip
        shown = total = 0
        lines = []
        for rec in open_log(self.path, self.format):
            if self.aggregator.group(rec.ip) != key:
                continue
            total += 1
            if shown < limit:
                shown += 1
                tags = self.aggregator.describe(rec.method, rec.path, rec.status, rec.user_agent, rec.referrer)
                lines.append(
                    f"  {_iso(rec.ts)} {rec.ip} {rec.method or '?'} {rec.path[:100]} {rec.status} "
                    f"agent={rec.user_agent[:60]!r} [{', '.join(tags)}]"
                )
        head.append(f"requests: {total:,}" + (f" (first {shown} shown)" if total > shown else ""))
        return "\n".join(head + lines)

    def rejudge(self, rules: RuleSet) -> dict[str, Finding]:
        """Flagged addresses under other parameters (same patterns: no need to read the file again)."""
        return {ip: f for ip, f in by_ip(judge(self.aggregator, rules)).items() if f.flagged}

    def summary(self) -> str:
        s = self.stats
        rate = s.lines / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.path}: {self.format} format, {s.lines:,} lines ({s.parsed:,} parsed, {s.malformed:,} malformed, "
            f"{s.blank:,} blank) in {self.seconds:.2f} s ({rate:,.0f} lines/s"
            + (f", {self.chunks} chunks" if self.chunks > 1 else "")
            + ")",
            f"{self.addresses:,} addresses, {sum(1 for f in self.verdicts.values()):,} tripped a rule, "
            f"{len(self.flagged):,} flagged (threshold {self.rules.threshold}, rules {self.rules.source})",
        ]
        table = self.per_rule()
        if table:
            lines.append(f"{'rule':<18} {'tripped':>8} {'flagged':>8} {'alone':>6}  (addresses)")
            for rule, (tripped, flagged, alone) in table.items():
                lines.append(f"{rule:<18} {tripped:>8,} {flagged:>8,} {alone:>6,}")
        for number, why, text in s.examples:
            lines.append(f"  malformed line {number}: {why}: {text[:120]!r}")
        return "\n".join(lines)


def replay_file(
    path: str | Path,
    *,
    fmt: str = "auto",
    rules: RuleSet | None = None,
    progress: bool = False,
    processes: int | None = None,
) -> ReplayResult:
    """Replay one log file through the detector (raises ``LogError`` when the file cannot be replayed at all).

    ``processes``: how many forked processes parse and classify byte ranges of the file (``parallel.py``; the
    default: every usable core for a plain file of 32 MB or more, else one); the verdicts are the same."""
    rules = rules or load_rules()
    started = time.perf_counter()
    reader = open_log(path, fmt)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(unit=" lines", unit_scale=True, desc=Path(path).name, mininterval=0.5)
    aggregator = Aggregator(rules)
    workers = processes_for(reader, processes)
    try:
        if workers > 1:
            aggregator = aggregate_parallel(reader, rules, workers, bar.update if bar is not None else None)
        else:
            reader.add_groups(
                rules.window_seconds, aggregator.add_group, progress=bar.update if bar is not None else None
            )
    finally:
        if bar is not None:
            bar.close()
    with no_gc():  # the verdicts are many small objects and no cycle (see parsers.no_gc)
        findings = judge(aggregator, rules)
        return ReplayResult(
            str(path), reader.format, reader.stats, rules, aggregator, findings, time.perf_counter() - started
        )


# ------------------------------------------------------------------------------------------- distributed


def aggregate_chunk(path: str, fmt: str, start: int, stop: int, rules_path: str | None = None) -> dict:
    """The partial aggregate of lines [start, stop) of ``path`` as JSON (what a Celery worker returns)."""
    rules = load_rules(rules_path)
    reader = open_log(path, fmt)
    aggregator = Aggregator(rules)
    reader.add_groups(rules.window_seconds, aggregator.add_group, start=start, stop=stop)
    return {"aggregate": aggregator.to_json(), "stats": reader.stats.as_dict()}


def count_lines(path: str | Path) -> int:
    return sum(1 for _ in open_log(path, "auto").lines())


def replay_distributed(
    path: str | Path,
    *,
    chunks: int = 4,
    fmt: str = "auto",
    rules_path: str | None = None,
    queue: str | None = None,
    timeout: float = 600,
) -> ReplayResult:
    """Replay across Celery workers: line ranges -> partial aggregates (``tasks.replay_chunk``) -> merge -> judge."""
    from celery import group, signature

    started = time.perf_counter()
    rules = load_rules(rules_path)
    reader = open_log(path, fmt)  # checks the file and fixes the format once, for every chunk
    total = count_lines(path)
    size = max(1, -(-total // max(1, chunks)))
    ranges = [(a, min(a + size, total)) for a in range(0, total, size)] or [(0, 0)]
    options = {"queue": queue} if queue else {}
    job = group(
        signature(REPLAY_CHUNK_TASK, args=(str(Path(path).resolve()), reader.format, a, b, rules_path), **options)
        for a, b in ranges
    )
    parts = job.apply_async().get(timeout=timeout)
    aggregator = Aggregator(rules)
    stats = ParseStats()
    for part in parts:  # in chunk order, so the malformed-line examples are the first ones, as in one process
        aggregator.merge_json(part["aggregate"])
        p = part["stats"]
        stats.lines += p["lines"]
        stats.parsed += p["parsed"]
        stats.blank += p["blank"]
        stats.malformed += p["malformed"]
        for ex in p["examples"]:
            if len(stats.examples) < len(reader.stats.examples) + 5:
                stats.examples.append((ex["line"], ex["why"], ex["text"]))
    stats.examples = stats.examples[:5]
    findings = judge(aggregator, rules)
    return ReplayResult(
        str(path), reader.format, stats, rules, aggregator, findings, time.perf_counter() - started, len(ranges)
    )


# ------------------------------------------------------------------------------------------- RequestLog


def request_log_load(records: Iterable[Record], *, batch_size: int = 5_000) -> int:
    """Insert ``records`` into ``RequestLog`` (what the flusher would have written). Returns rows inserted."""
    from ..models import RequestLog

    total = 0
    batch = []
    for rec in records:
        batch.append(
            RequestLog(
                request_id=uuid.uuid4(),
                ip_address=rec.ip,
                timestamp=datetime.fromtimestamp(rec.ts, tz=UTC),
                method=rec.method,
                path=rec.path,
                status_code=rec.status,
                duration_ms=0.0,
                user_agent=rec.user_agent,
                referrer=rec.referrer,
            )
        )
        if len(batch) >= batch_size:
            RequestLog.objects.bulk_create(batch)
            total += len(batch)
            batch = []
    if batch:
        RequestLog.objects.bulk_create(batch)
        total += len(batch)
    return total


def request_log_export_jsonl(path: str | Path, *, start: datetime, end: datetime) -> int:
    """``RequestLog`` rows in ``[start, end)`` as the app's JSONL export (what ``replay_log --format jsonl`` reads)."""
    from ..models import RequestLog

    rows = (
        RequestLog.objects.filter(timestamp__gte=start, timestamp__lt=end, ip_address__isnull=False)
        .order_by("timestamp", "id")
        .values_list("timestamp", "ip_address", "method", "path", "status_code", "user_agent", "referrer")
    )
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for ts, ip, method, p, status, agent, referrer in rows.iterator(chunk_size=5_000):
            ip = cast(str, ip)  # never null: ip_address__isnull=False above
            fh.write(format_jsonl(Record(ts.timestamp(), ip, method, p, status, agent, referrer)) + "\n")
            n += 1
    return n
