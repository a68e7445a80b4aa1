"""Replay on several cores: a plain log file cut into byte ranges at line starts, each range parsed, counted and
classified in a process of its own (the first in the caller's, the others forked: ``split``), the per-address
aggregates merged (counts add, sets unite: exactly what one process
makes, as ``replay_distributed`` relies on too) and judged once by the caller.

Used by ``replay.replay_file`` for plain (not gzip) files of at least ``MIN_BYTES`` when more than one core is
available; the children share the parent's memory (fork) and send back only their aggregates and parse counts.
"""

from __future__ import annotations

import io
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .aggregate import Aggregator
from .parsers import MAX_EXAMPLES, LogReader, ParseStats, no_gc
from .rules import RuleSet

MIN_BYTES = 32 << 20  # below, one process is as fast (forking and merging cost ~0.2 s)
MAX_PROCESSES = 8

T = TypeVar("T")

_JOB: dict = {}  # what the forked children read: the reader and the rules (never pickled)


def processes_for(reader: LogReader, requested: int | None) -> int:
    """How many processes ``reader``'s file is replayed with: ``requested`` (1: one), else the cores this process
    may use when the file is plain and large enough."""
    if requested is not None:
        wanted = max(1, requested)
    else:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        wanted = min(cores, MAX_PROCESSES) if reader.size >= MIN_BYTES else 1
    if wanted > 1 and (reader.gzipped or "fork" not in multiprocessing.get_all_start_methods()):
        return 1
    return wanted


def cuts(path: Path, parts: int) -> list[tuple[int, int]]:
    """``parts`` byte ranges of about equal size, each starting at a line start."""
    size = path.stat().st_size
    bounds = [0]
    with open(path, "rb") as fh:
        for i in range(1, parts):
            fh.seek(max(bounds[-1], size * i // parts))
            if fh.tell() > 0:
                fh.seek(fh.tell() - 1)
                fh.readline()  # to the start of the next line (none skipped when already at one)
            bounds.append(min(fh.tell(), size))
    bounds.append(size)
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a] or [(0, 0)]


def _chunk(span: tuple[int, int]) -> tuple[dict, ParseStats]:
    reader: LogReader = _JOB["reader"]
    rules: RuleSet = _JOB["rules"]
    start, stop = span
    with open(reader.path, "rb") as fh:
        fh.seek(start)
        data = fh.read(stop - start)
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace", newline=None)
    part = LogReader.__new__(LogReader)
    part.__dict__.update(reader.__dict__)
    part.stats = ParseStats()
    part._open = lambda: text
    aggregator = Aggregator(rules)
    part.add_groups(rules.window_seconds, aggregator.add_group)
    return aggregator.stats, part.stats


def aggregate_parallel(
    reader: LogReader, rules: RuleSet, processes: int, progress: Callable[[int], object] | None = None
) -> Aggregator:
    """The aggregate of ``reader``'s whole file made by ``processes`` forked processes; ``reader.stats`` is filled
    as one process fills it (malformed-line numbers counted from the start of the file)."""
    spans = cuts(reader.path, processes)
    _JOB.update(reader=reader, rules=rules)
    try:
        # the first range in this process, the others in forked children (split): only theirs are pickled; the
        # collector paused while they are unpickled (millions of small containers, no cycle): with it on,
        # unpickling costs 5x as much (see parsers.no_gc)
        with no_gc():
            parts = split(lambda i: _chunk(spans[i]), len(spans))
    finally:
        _JOB.clear()
    aggregator = Aggregator(rules)
    stats = reader.stats
    for ip_stats, part in parts:  # in file order, so the first malformed lines are the examples kept
        for key, s in ip_stats.items():
            mine = aggregator.stats.get(key)
            if mine is None:
                aggregator.stats[key] = s
            else:
                mine.merge(s)
        for number, why, line in part.examples:
            if len(stats.examples) < MAX_EXAMPLES:
                stats.examples.append((number + stats.lines, why, line))
        stats.lines += part.lines
        stats.parsed += part.parsed
        stats.malformed += part.malformed
        stats.blank += part.blank
        if progress is not None:
            progress(part.lines)
    return aggregator


def _call(part: int):
    return _JOB["split"](part)


def split(fn: Callable[[int], T], parts: int) -> list[T]:
    """``[fn(0), fn(1), ...]``: ``fn(0)`` in this process while each other part runs in a forked child (which reads
    what ``fn`` needs from the parent's memory and sends back only its result): one part fewer to pickle and
    unpickle than with a child for every part, and this process is not left waiting."""
    if parts <= 1:
        return [fn(0)]
    _JOB["split"] = fn
    try:
        with multiprocessing.get_context("fork").Pool(parts - 1) as pool, no_gc():
            pending = pool.map_async(_call, range(1, parts))
            first = fn(0)
            return [first, *pending.get()]
    finally:
        _JOB.pop("split", None)
