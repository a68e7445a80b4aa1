"""Log parsers for replay: Apache/Nginx ``combined`` and ``common`` formats and the app's JSONL export.

``open_log(path, fmt="auto")`` returns a ``LogReader``: iterate it for ``Record`` tuples
``(ts, ip, method, path, status, user_agent, referrer)`` (``ts`` in epoch seconds, ``path`` without its query
string unless that carries an attack payload, as ``RequestLog.path`` stores it: ``payloads.target_path``). Gzip
files are recognised by their magic bytes. The format is detected from the first lines. A line that does not
parse is counted in ``reader.stats`` with a few examples and skipped: a bad line never stops a replay. What stops
it is a ``LogError`` with a one-line message (an empty or binary file, a format that cannot be recognised, a file
that cannot be read).
"""

from __future__ import annotations

import calendar
import contextlib
import gc
import gzip
import io
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import NamedTuple

from .payloads import target_path

FORMATS = ("combined", "common", "jsonl")
MAX_EXAMPLES = 5
SNIFF_LINES = 50


class LogError(ValueError):
    """The file as a whole cannot be replayed (the message says why)."""


class Record(NamedTuple):
    ts: float
    ip: str
    method: str
    path: str
    status: int
    user_agent: str
    referrer: str


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


# A quoted field with backslash escapes, written as an unrolled loop (``"[^"\\]*(?:\\.[^"\\]*)*"``): the same language
# as ``"(?:[^"\\]|\\.)*"`` but about 3.5x faster in ``re``, since runs of plain characters match in one step.
_Q = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
COMMON = re.compile(r"(\S+) \S+ \S+ \[([^\]]+)\] " + _Q + r" (\d{3}) (?:\d+|-)")
COMBINED = re.compile(COMMON.pattern + r" " + _Q + r" " + _Q)
_MONTHS = {m: i for i, m in enumerate(("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec").split(), 1)}
_TIME = re.compile(r"(\d{2})/(\w{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$")


class _Caches:
    def __init__(self) -> None:
        self.times: dict[str, float | None] = {}
        self.minutes: dict[str, float] = {}  # "10/Oct/2000:13:55 -0700" -> epoch of that minute
        self.ips: dict[str, str | None] = {}

    def time(self, text: str) -> float | None:
        value = self.times.get(text, -1.0)
        if value != -1.0:
            return value
        # A busy log has a new second on almost every line but a new minute only every few thousand: the seconds
        # are added to the minute, parsed once (the epoch is linear in them: what the full parse would give).
        seconds = text[18:20]
        if len(text) == 26 and text[17] == ":" and seconds.isdigit() and seconds.isascii():
            base = self.minutes.get(text[:17] + text[20:])
            if base is not None:
                value = base + int(seconds)
                if len(self.times) > 200_000:
                    self.times.clear()
                self.times[text] = value
                return value
        m = _TIME.match(text)
        value = None
        if m and m.group(2) in _MONTHS:
            day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
            try:
                epoch = calendar.timegm((int(year), _MONTHS[mon], int(day), int(hh), int(mm), int(ss)))
                offset = (int(oh) * 3600 + int(om) * 60) * (1 if sign == "+" else -1)
                value = float(epoch - offset)
            except (ValueError, OverflowError):
                value = None
            else:
                if len(self.minutes) > 100_000:
                    self.minutes.clear()
                self.minutes[text[:17] + text[20:]] = value - int(ss)
        if len(self.times) > 200_000:
            self.times.clear()
        self.times[text] = value
        return value

    def ip(self, text: str) -> str | None:
        value = self.ips.get(text, "")
        if value != "":
            return value
        try:
            addr = ipaddress.ip_address(text)
            if addr.version == 6 and addr.ipv4_mapped is not None:
                addr = addr.ipv4_mapped
            value = str(addr)
        except ValueError:
            value = None
        if len(self.ips) > 500_000:
            self.ips.clear()
        self.ips[text] = value
        return value


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return text.replace('\\"', '"').replace("\\x22", '"').replace("\\\\", "\\")


def _split_request(request: str) -> tuple[str, str]:
    """``"GET /a?b=1 HTTP/1.1"`` -> ``("GET", "/a")`` (the query kept when it carries a payload: ``target_path``);
    garbage (a TLS handshake sent to port 80) -> ``("", text)``."""
    parts = request.split(" ")
    if len(parts) == 3 and parts[0].isalpha() and parts[0].isupper():
        method, target = parts[0], parts[1]
    elif len(parts) == 2 and parts[0].isalpha() and parts[0].isupper():
        method, target = parts[0], parts[1]
    else:
        return "", request[:2048]
    return method[:16], target_path(target)


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
    return _parse_clf(COMBINED if fmt == "combined" else COMMON, line, caches)


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
        regex = COMBINED if fmt == "combined" else COMMON
        with self._open() as fh:
            for number, line in enumerate(fh, 1):
                stats.lines = number
                line = line.rstrip("\r\n")
                if not line.strip():
                    stats.blank += 1
                    continue
                rec = _parse_jsonl(line, caches) if fmt == "jsonl" else _parse_clf(regex, line, caches)
                if isinstance(rec, str):
                    stats.bad(number, rec, line)
                    continue
                stats.parsed += 1
                yield rec

    def lines(self) -> Iterator[str]:
        """The raw lines (for cutting a file into chunks)."""
        with self._open() as fh:
            yield from fh

    def count_groups(
        self,
        window: int,
        *,
        start: int = 0,
        stop: int | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> dict[tuple, list]:
        """Lines [start, stop) (0-based; default: all) reduced to groups of identical requests, what
        ``aggregate.GroupCounter`` makes of the records: ``(window start, ip, method, path, status, user agent,
        referrer) -> [count, first ts, last ts]``. ``stats`` is updated as iterating would update it.

        The fast path of replay: a combined/common line costs one regex match and a few dictionary lookups; no
        ``Record`` is made. Lines are first counted by their raw fields (address, request line, status, referrer,
        agent as written); each distinct raw request is then normalised once (query string cut, escapes undone),
        which gives the same groups as parsing every line."""
        groups: dict[tuple, list] = {}
        with self._open() as fh, no_gc():
            blocks = _blocks(fh, start, stop)
            if self.format == "jsonl":
                self._count_jsonl(blocks, start + 1, window, groups, progress)
            else:
                raw = self._count_clf(blocks, start + 1, window, progress)
                _normalise(raw, groups, self.format == "combined")
        return groups

    def _count_clf(self, blocks: Iterable[list[str]], number: int, window: int, progress) -> dict[tuple, list]:
        stats = self.stats
        caches = _Caches()
        ip_cache = caches.ips
        times: dict[str, tuple[float, int] | None] = {}
        match = (COMBINED if self.format == "combined" else COMMON).match
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


def _normalise(raw: dict[tuple, list], groups: dict[tuple, list], combined: bool) -> None:
    """Raw groups ``(window, ip, request line, status, [referrer, agent])`` -> the groups ``_parse_clf`` records make
    (each distinct request line, referrer and agent is unescaped and cut once)."""
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
        nkey = (w, ip, mp[0], mp[1], code, agent, referrer)
        grp = groups.get(nkey)
        if grp is None:
            groups[nkey] = [n, first, last]
        else:
            grp[0] += n
            if first < grp[1]:
                grp[1] = first
            if last > grp[2]:
                grp[2] = last


def open_log(path: str | Path, fmt: str = "auto") -> LogReader:
    return LogReader(path, fmt)


# ------------------------------------------------------------------------------------------- writing


def _clf_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _esc(text: str) -> str:
    return (text or "-").replace("\\", "\\\\").replace('"', '\\"')


def format_combined(rec: Record, *, size: int = 0) -> str:
    """``rec`` as an Apache/Nginx combined log line (the generator writes these)."""
    request = f"{rec.method} {rec.path} HTTP/1.1" if rec.method else rec.path
    return (
        f'{rec.ip} - - [{_clf_time(rec.ts)}] "{_esc(request)}" {rec.status} {size} '
        f'"{_esc(rec.referrer)}" "{_esc(rec.user_agent)}"'
    )


def format_jsonl(rec: Record) -> str:
    """``rec`` as a line of the app's JSONL export (``RequestLog`` field names)."""
    return json.dumps(
        {
            "timestamp": datetime.fromtimestamp(rec.ts, tz=UTC).isoformat(),
            "ip_address": rec.ip,
            "method": rec.method,
            "path": rec.path,
            "status_code": rec.status,
            "user_agent": rec.user_agent,
            "referrer": rec.referrer,
        },
        separators=(",", ":"),
    )
