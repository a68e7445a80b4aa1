"""Counting identical requests: the groups ``(window, ip, method, path, status, user agent, referrer) ->
[count, first, last]`` that both the replay and the hourly task classify once each (``aggregate.Aggregator``)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from .clf import Record, _split_request, _unescape


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused: building hundreds of thousands of small lists and tuples (none of them
    in a cycle) otherwise triggers full collections that walk all of them again and again (~20% of a replay)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _blocks(fh, start: int = 0, stop: int | None = None) -> Iterator[list[str]]:
    """The lines of ``fh`` in lists of about a megabyte (all of them) or 50,000 lines (lines [start, stop))."""
    if start == 0 and stop is None:
        while block := fh.readlines(1 << 20):
            yield block
        return
    lines = islice(fh, start, stop)
    while block := list(islice(lines, 50_000)):
        yield block


def _normalise(raw: dict[tuple, list], add: Callable[..., None], combined: bool) -> None:
    """Raw groups ``(window, ip, request line, status, [referrer, agent])`` -> the groups ``_parse_clf`` records make
    (each distinct request line, referrer and agent is unescaped and cut once), each handed to ``add`` (an
    ``Aggregator.add_group``) at once. Two raw groups that normalise alike (a query string cut, an escape undone)
    are handed over one after the other rather than summed first: an aggregate adds them up the same way (counts
    add, sets unite, first and last by min and max), and a second dictionary of every group is not built."""
    requests: dict[str, tuple[str, str]] = {}
    referrers: dict[str, str] = {}
    agents: dict[str, str] = {}
    statuses: dict[str, int] = {}
    for key, (n, first, last) in raw.items():
        w, ip, request, status = key[:4]
        mp = requests.get(request)
        if mp is None:
            mp = requests[request] = _split_request(_unescape(request))
        code = statuses.get(status)
        if code is None:
            code = statuses[status] = int(status)
        if combined:
            referrer = referrers.get(key[4])
            if referrer is None:
                referrer = _unescape(key[4])
                referrer = referrers[key[4]] = "" if referrer == "-" else referrer[:1024]
            agent = agents.get(key[5])
            if agent is None:
                agent = _unescape(key[5])
                agent = agents[key[5]] = "" if agent == "-" else agent[:512]
        else:
            referrer = agent = ""
        add(w, ip, mp[0], mp[1], code, agent, referrer, n, first, last)


class GroupCounter:
    """Identical requests counted: ``(window, ip, method, path, status, agent, referrer) -> [n, first, last]``."""

    def __init__(self, window_seconds: int) -> None:
        self.window = window_seconds
        self.groups: dict[tuple, list] = {}

    def add(self, records: Iterable[Record]) -> int:
        groups = self.groups
        window = self.window
        n = 0
        for ts, ip, method, path, status, agent, referrer in records:
            n += 1
            key = (int(ts // window) * window, ip, method, path, status, agent, referrer)
            g = groups.get(key)
            if g is None:
                groups[key] = [1, ts, ts]
            else:
                g[0] += 1
                if ts < g[1]:
                    g[1] = ts
                elif ts > g[2]:
                    g[2] = ts
        return n

    def drain_into(self, add: Callable[..., None]) -> None:
        """Hand every group to ``add`` (an ``Aggregator.add_group``) and start empty."""
        with no_gc():
            for (w, ip, method, path, status, agent, referrer), (n, first, last) in self.groups.items():
                add(w, ip, method, path, status, agent, referrer, n, first, last)
        self.groups = {}
