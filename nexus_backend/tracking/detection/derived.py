"""What the detector derives from the aggregates alone, once per aggregator, for every rule and every ruleset judged
against it (``Derived``), and the address arithmetic it needs: whitelists, crawlers' published networks, forward-
confirmed reverse DNS."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache

from .aggregate import SAMPLE, Aggregator


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


def _sample(values: Iterable[str]) -> list[str]:
    return sorted(values)[:SAMPLE]


def _span(key: str) -> tuple[int, int, int]:
    """An address group key (``203.0.113.7`` or ``2001:db8:1:2::/64``) as ``(version, first, last)`` integers."""
    if "/" in key:
        # a network (address_group writes an IPv6 /64 as "2001:db8:1:2::/64"): the integers ip_network gives,
        # without building the object (ipaddress costs ~50 us a network: most of the judge's setup on a big log)
        address, _, prefix = key.partition("/")
        six = ":" in address
        bits = 128 if six else 32
        try:
            value = int.from_bytes(socket.inet_pton(socket.AF_INET6 if six else socket.AF_INET, address), "big")
        except OSError:
            value = -1
        if value < 0 or not (prefix.isascii() and prefix.isdigit()) or int(prefix) > bits:
            net = ipaddress.ip_network(key, strict=False)  # whatever ipaddress makes of it (or its error)
            return net.version, int(net.network_address), int(net.broadcast_address)
        host_bits = bits - int(prefix)
        first = value >> host_bits << host_bits
        return (6 if six else 4), first, first | ((1 << host_bits) - 1)
    if ":" in key:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, key), "big")
        return 6, value, value
    value = int.from_bytes(socket.inet_aton(key), "big")  # keys are normalised addresses (parsers, address_group)
    return 4, value, value


def _spans(networks: tuple) -> tuple[tuple[int, int, int], ...]:
    return tuple((n.version, int(n.network_address), int(n.broadcast_address)) for n in networks)


def _in(spans: tuple, span: tuple[int, int, int]) -> bool:
    version, first, last = span
    return any(v == version and lo <= first and last <= hi for v, lo, hi in spans)


class Derived:
    """What ``judge`` derives from the aggregates alone, computed once per aggregator (``Aggregator.memo``) and
    reused by every ruleset judged against it: in a 50-point sweep only the rule tests run 50 times."""

    def __init__(self, aggregator: Aggregator) -> None:
        self.memo = aggregator.memo()
        self.stats = aggregator.stats
        self.window = aggregator.window

    def windows(self) -> set[int]:
        """The windows the aggregates cover (the hourly task: one; a replayed log: each hour it spans)."""
        out = self.memo.get("windows")
        if out is None:
            out = self.memo["windows"] = {w for w, _ in self.stats}
        return out

    def spans(self) -> dict[str, tuple[int, int, int]]:
        out = self.memo.get("spans")
        if out is None:
            out = self.memo["spans"] = {ip: _span(ip) for ip in {ip for _, ip in self.stats}}
        return out

    def whitelisted(self, whitelist: tuple) -> set[str]:
        key = ("whitelisted", whitelist)
        out = self.memo.get(key)
        if out is None:
            spans = _spans(whitelist)
            out = self.memo[key] = {ip for ip, span in self.spans().items() if _in(spans, span)}
        return out

    def verified(self, crawlers: dict, verify_dns: bool) -> set[str]:
        """Addresses whose crawler claims hold: inside the claimed crawler's published networks (or, with
        ``verify_dns``, forward-confirmed reverse DNS under its domains)."""
        key = ("verified", tuple(crawlers), verify_dns)
        out = self.memo.get(key)
        if out is None:
            spans = self.spans()
            claims: dict[str, set[str]] = {}
            for (_, ip), s in self.stats.items():
                if s.crawler_claims:
                    claims.setdefault(ip, set()).update(s.crawler_claims)
            out = set()
            for ip, names in claims.items():
                if any(_in(_spans(crawlers[n].networks), spans[ip]) for n in names) or (
                    verify_dns and any(fcrdns(ip, crawlers[n].rdns) for n in names)
                ):
                    out.add(ip)
            self.memo[key] = out
        return out

    def ranked_actions(self) -> tuple[dict, dict]:
        """``fp_ips[(window, fingerprint)]``: how many addresses share it; ``ranked[(window, ip)]``: its actions as
        ``(fingerprint, count, addresses)``, most shared first (ties: the greater fingerprint first)."""
        out = self.memo.get("actions")
        if out is None:
            fp_ips: dict[tuple[int, str], int] = {}
            for (w, _ip), s in self.stats.items():
                for fp in s.actions:
                    fp_ips[(w, fp)] = fp_ips.get((w, fp), 0) + 1
            ranked = {
                key: sorted(((fp, n, fp_ips[(key[0], fp)]) for fp, n in s.actions.items()),
                            key=lambda x: (x[2], x[0]), reverse=True)
                for key, s in self.stats.items()
                if s.actions
            }  # fmt: skip
            out = self.memo["actions"] = (fp_ips, ranked)
        return out

    def sample(self, key: tuple[int, str], name: str, values: set[str]) -> list[str]:
        cache = self.memo.get(("sample", name))
        if cache is None:
            cache = self.memo[("sample", name)] = {}
        out = cache.get(key)
        if out is None:
            out = cache[key] = _sample(values)
        return list(out)

    def iso(self, ts: int) -> str:
        cache = self.memo.get("iso")
        if cache is None:
            cache = self.memo["iso"] = {}
        out = cache.get(ts)
        if out is None:
            out = cache[ts] = _iso(ts)
        return out


@lru_cache(maxsize=4096)
def fcrdns(ip: str, suffixes: tuple[str, ...]) -> bool:
    """Forward-confirmed reverse DNS: ``ip``'s PTR name ends in one of ``suffixes`` and resolves back to ``ip``.
    False when there is no resolver, no answer, or ``ip`` is a network (an IPv6 /64)."""
    if not suffixes or "/" in ip:
        return False
    try:
        host = socket.gethostbyaddr(ip)[0].lower().rstrip(".")
        if not any(host == s or host.endswith("." + s) for s in suffixes):
            return False
        return ip in socket.gethostbyname_ex(host)[2] or ip in {a[4][0] for a in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False
