"""Log parsers for replay: Apache/Nginx ``combined`` and ``common`` formats (and Apache's ``vhost_`` forms of both,
the virtual host first) and the app's JSONL export.

``open_log(path, fmt="auto")`` returns a ``LogReader``: iterate it for ``Record`` tuples
``(ts, ip, method, path, status, user_agent, referrer)`` (``ts`` in epoch seconds, ``path`` without its query
string unless that carries an attack payload, as ``RequestLog.path`` stores it: ``payloads.target_path``). Gzip
files are recognised by their magic bytes. The format is detected from the first lines. A line that does not
parse is counted in ``reader.stats`` with a few examples and skipped: a bad line never stops a replay. What stops
it is a ``LogError`` with a one-line message (an empty or binary file, a format that cannot be recognised, a file
that cannot be read).
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .clf import REGEXES, WITH_AGENT, Record, _Caches, _split_request, _unescape
from .counting import _blocks, _normalise, no_gc
from .payloads import target_path
from .writers import format_combined, format_jsonl

__all__ = ["FORMATS", "LogError", "LogReader", "ParseStats", "Record", "detect_format", "format_combined",
           "format_jsonl", "no_gc", "open_log", "parse_line"]  # fmt: skip

FORMATS = ("combined", "common", "vhost_combined", "vhost_common", "jsonl")
MAX_EXAMPLES = 5
SNIFF_LINES = 50


class LogError(ValueError):
    """The file as a whole cannot be replayed (the message says why)."""


@dataclass
class ParseStats:
    lines: int = 0
    parsed: int = 0
    malformed: int = 0
    blank: int = 0
    examples: list[tuple[int, str, str]] = field(default_factory=list)  # (line number, why, the line)

    def bad(self, number: int, why: str, line: str) -> None:
        self.malformed += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append((number, why, line[:200]))

    def as_dict(self) -> dict:
        return {
            "lines": self.lines,
            "parsed": self.parsed,
            "malformed": self.malformed,
            "blank": self.blank,
            "examples": [{"line": n, "why": w, "text": t} for n, w, t in self.examples],
        }


def _parse_clf(regex: re.Pattern, line: str, caches: _Caches) -> Record | str:
    m = regex.match(line)
    if m is None:
        return "does not match the format"
    g = m.groups()
    ip = caches.ip(g[0])
    if ip is None:
        return f"not an IP address: {g[0][:60]!r}"
    ts = caches.time(g[1])
    if ts is None:
        return f"bad timestamp: {g[1][:40]!r}"
    method, path = _split_request(_unescape(g[2]))
    referrer = user_agent = ""
    if len(g) > 4:
        referrer = _unescape(g[4])
        user_agent = _unescape(g[5])
        referrer = "" if referrer == "-" else referrer[:1024]
        user_agent = "" if user_agent == "-" else user_agent[:512]
    return Record(ts, ip, method, path, int(g[3]), user_agent, referrer)


def _parse_jsonl(line: str, caches: _Caches) -> Record | str:
    try:
        obj = json.loads(line)
    except ValueError:
        return "not JSON"
    if not isinstance(obj, dict):
        return "not a JSON object"
    try:
        ip = caches.ip(str(obj["ip_address"]))
        stamp = obj["timestamp"]
        ts = float(stamp) if isinstance(stamp, int | float) else datetime.fromisoformat(stamp).timestamp()
        status = int(obj["status_code"])
        path = target_path(str(obj["path"]))
        method = str(obj.get("method") or "")[:16]
    except KeyError as exc:
        return f"missing field {exc.args[0]!r}"
    except (TypeError, ValueError) as exc:
        return f"bad value ({exc})"
    if ip is None:
        return f"not an IP address: {str(obj['ip_address'])[:60]!r}"
    return Record(
        ts, ip, method, path, status, str(obj.get("user_agent") or "")[:512], str(obj.get("referrer") or "")[:1024]
    )


def parse_line(fmt: str, line: str, caches: _Caches | None = None) -> Record | str:
    """One line in ``fmt``: a ``Record``, or the reason it is malformed (a string)."""
    caches = caches or _Caches()
    if fmt == "jsonl":
        return _parse_jsonl(line, caches)
    return _parse_clf(REGEXES[fmt], line, caches)


def _opener(path: Path):
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192)
    except FileNotFoundError:
        raise LogError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LogError(f"{path}: is a directory, not a log file") from None
    except OSError as exc:
        raise LogError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as gz:
                head = gz.read(8192)
        except (OSError, EOFError) as exc:
            raise LogError(f"{path}: a gzip file that cannot be read ({exc})") from None

        def opener():
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline=None)

        opener.gzipped = True  # type: ignore[attr-defined]

    else:

        def opener():
            return open(path, encoding="utf-8", errors="replace", newline=None)

    if not head.strip():
        raise LogError(f"{path}: the file is empty")
    if b"\x00" in head or sum(b < 9 or 13 < b < 32 for b in head) > len(head) // 20:
        raise LogError(f"{path}: looks binary, not a text log (combined, common or JSONL)")
    return opener


def detect_format(lines: list[str]) -> str | None:
    """The format most of ``lines`` parse as (``None``: not one of them parses at least half)."""
    lines = [line for line in lines if line.strip()]
    if not lines:
        return None
    caches = _Caches()
    best, best_ok = None, 0
    for fmt in FORMATS:  # combined before common: a combined line also matches the common pattern
        ok = sum(isinstance(parse_line(fmt, line, caches), Record) for line in lines)
        if ok > best_ok:
            best, best_ok = fmt, ok
    return best if best_ok * 2 >= len(lines) else None


class LogReader:
    """Iterate for ``Record`` tuples; ``stats`` counts lines, parsed and malformed ones (with examples)."""

    def __init__(self, path: str | Path, fmt: str = "auto") -> None:
        self.path = Path(path)
        if fmt not in ("auto", *FORMATS):
            raise LogError(f"unknown format {fmt!r}: use auto, {', '.join(FORMATS)}")
        self._open = _opener(self.path)
        self.gzipped = getattr(self._open, "gzipped", False)
        if fmt == "auto":
            with self._open() as fh:
                sample = [line.rstrip("\n") for _, line in zip(range(SNIFF_LINES), fh, strict=False)]
            detected = detect_format(sample)
            if detected is None:
                shown = next((s for s in sample if s.strip()), "")[:120]
                raise LogError(
                    f"{self.path}: unknown log format (not combined, common or JSONL); first line: {shown!r}"
                )
            fmt = detected
        self.format = fmt
        self.stats = ParseStats()
        try:
            self.size = self.path.stat().st_size
        except OSError:
            self.size = 0

    def __iter__(self) -> Iterator[Record]:
        caches = _Caches()
        stats = self.stats
        fmt = self.format
        regex = REGEXES.get(fmt)
        with self._open() as fh:
            for number, line in enumerate(fh, 1):
                stats.lines = number
                line = line.rstrip("\r\n")
                if not line.strip():
                    stats.blank += 1
                    continue
                rec = _parse_clf(regex, line, caches) if regex is not None else _parse_jsonl(line, caches)
                if isinstance(rec, str):
                    stats.bad(number, rec, line)
                    continue
                stats.parsed += 1
                yield rec

    def lines(self) -> Iterator[str]:
        """The raw lines (for cutting a file into chunks)."""
        with self._open() as fh:
            yield from fh

    def add_groups(
        self,
        window: int,
        add: Callable[..., None],
        *,
        start: int = 0,
        stop: int | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> None:
        """Lines [start, stop) (0-based; default: all) reduced to groups of identical requests, each handed to
        ``add`` (an ``aggregate.Aggregator.add_group``) as ``(window start, ip, method, path, status, user agent,
        referrer, count, first ts, last ts)``: what ``aggregate.GroupCounter`` makes of the records. ``stats`` is
        updated as iterating would update it.

        The fast path of replay: a combined/common line costs one regex match and a few dictionary lookups; no
        ``Record`` is made. Lines are first counted by their raw fields (address, request line, status, referrer,
        agent as written); each distinct raw request is then normalised once (query string cut, escapes undone),
        which gives the same aggregate as parsing every line."""
        with self._open() as fh, no_gc():
            blocks = _blocks(fh, start, stop)
            if self.format == "jsonl":
                groups: dict[tuple, list] = {}
                self._count_jsonl(blocks, start + 1, window, groups, progress)
                for key, (n, first, last) in groups.items():
                    add(*key, n, first, last)
            else:
                raw = self._count_clf(blocks, start + 1, window, progress)
                _normalise(raw, add, self.format in WITH_AGENT)

    def _count_clf(self, blocks: Iterable[list[str]], number: int, window: int, progress) -> dict[tuple, list]:
        stats = self.stats
        caches = _Caches()
        ip_cache = caches.ips
        times: dict[str, tuple[float, int] | None] = {}
        match = REGEXES[self.format].match
        raw: dict[tuple, list] = {}
        get = raw.get
        seen = parsed = 0
        for block in blocks:
            for line in block:
                m = match(line)
                if m is None:
                    self._reject(number, line, "does not match the format")
                    number += 1
                    continue
                g = m.groups()
                ip = ip_cache.get(g[0], "")
                if ip == "":
                    ip = caches.ip(g[0])
                if ip is None:
                    self._reject(number, line, f"not an IP address: {g[0][:60]!r}")
                    number += 1
                    continue
                tw = times.get(g[1], 0)
                if isinstance(tw, int):  # 0: not seen yet
                    ts = caches.time(g[1])
                    tw = None if ts is None else (ts, int(ts // window) * window)
                    if len(times) > 200_000:
                        times.clear()
                    times[g[1]] = tw
                if tw is None:
                    self._reject(number, line, f"bad timestamp: {g[1][:40]!r}")
                    number += 1
                    continue
                ts, w = tw
                key = (w, ip, *g[2:])
                grp = get(key)
                if grp is None:
                    raw[key] = [1, ts, ts]
                else:
                    grp[0] += 1
                    if ts < grp[1]:
                        grp[1] = ts
                    elif ts > grp[2]:
                        grp[2] = ts
                parsed += 1
                number += 1
            seen += len(block)
            if progress is not None:
                progress(len(block))
        stats.lines += seen
        stats.parsed += parsed
        return raw

    def _reject(self, number: int, line: str, why: str) -> None:
        line = line.rstrip("\r\n")
        if line.strip():
            self.stats.bad(number, why, line)
        else:
            self.stats.blank += 1

    def _count_jsonl(self, blocks: Iterable[list[str]], number: int, window: int, groups: dict, progress) -> None:
        stats = self.stats
        caches = _Caches()
        for block in blocks:
            for line in block:
                line = line.rstrip("\r\n")
                if not line.strip():
                    stats.blank += 1
                else:
                    rec = _parse_jsonl(line, caches)
                    if isinstance(rec, str):
                        stats.bad(number, rec, line)
                    else:
                        stats.parsed += 1
                        ts = rec.ts
                        key = (int(ts // window) * window, rec.ip, rec.method, rec.path, rec.status, rec.user_agent,
                               rec.referrer)  # fmt: skip
                        grp = groups.get(key)
                        if grp is None:
                            groups[key] = [1, ts, ts]
                        else:
                            grp[0] += 1
                            if ts < grp[1]:
                                grp[1] = ts
                            elif ts > grp[2]:
                                grp[2] = ts
                number += 1
            stats.lines += len(block)
            if progress is not None:
                progress(len(block))


def open_log(path: str | Path, fmt: str = "auto") -> LogReader:
    return LogReader(path, fmt)
