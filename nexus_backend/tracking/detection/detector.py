"""The detector: named rules (``rules.yaml``) applied to per-IP aggregates, one window at a time.

``judge(aggregator, rules)`` returns a ``Finding`` for every (window, address) that tripped at least one rule;
``finding.flagged`` says whether its score reached the threshold. ``by_ip(findings)`` folds the windows of a
long log into one verdict per address (rules united, highest score). The hourly task (``detect_window``) and the
replay (``replay.replay_file``) both end here.
"""

from __future__ import annotations

import ipaddress
import math
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from .aggregate import SAMPLE, Aggregator
from .database import GROUPS_SQL, WORK_MEM, aggregate_request_log
from .families import RULES, Context, Hit
from .parsers import no_gc
from .rules import RuleSet
from .site import Site, learn_site

__all__ = ["GROUPS_SQL", "RULES", "WORK_MEM", "Context", "Finding", "Hit", "Site", "aggregate_request_log", "by_ip",
           "fcrdns", "flagged_ips", "judge", "learn_site"]  # fmt: skip


@dataclass
class Finding:
    ip: str
    window_start: int  # epoch seconds
    window_end: int
    rules: list[str]
    score: float
    flagged: bool
    reasons: list[str]
    evidence: dict
    first_seen: float
    last_seen: float
    block_minutes: int = 0  # > 0: a rule marked `block` tripped and the address is flagged
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)[:255]

    def as_row(self) -> dict:
        return {
            "ip": self.ip,
            "rules": " ".join(self.rules),
            "score": round(self.score, 4),
            "reasons": "; ".join(self.reasons),
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "window_start": _iso(self.window_start),
            "requests": self.evidence.get("requests", 0),
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


def _sample(values: Iterable[str]) -> list[str]:
    return sorted(values)[:SAMPLE]


def _span(key: str) -> tuple[int, int, int]:
    """An address group key (``203.0.113.7`` or ``2001:db8:1:2::/64``) as ``(version, first, last)`` integers."""
    if "/" in key:
        net = ipaddress.ip_network(key, strict=False)
        return net.version, int(net.network_address), int(net.broadcast_address)
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


class _Derived:
    """What ``judge`` derives from the aggregates alone, computed once per aggregator (``Aggregator.memo``) and
    reused by every ruleset judged against it: in a 50-point sweep only the rule tests run 50 times."""

    def __init__(self, aggregator: Aggregator) -> None:
        self.memo = aggregator.memo()
        self.stats = aggregator.stats
        self.window = aggregator.window

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


def judge(aggregator: Aggregator, rules: RuleSet, *, served_families: Iterable[str] = ()) -> list[Finding]:
    """Apply ``rules`` to every (window, address) of ``aggregator`` (made with rules of the same fingerprint).

    ``served_families``: probe families the site is known to serve besides what the traffic shows (the hourly task
    passes those its URL configuration answers)."""
    if aggregator.fingerprint != rules.fingerprint:
        raise ValueError("these aggregates were classified with other path/agent patterns: aggregate again")
    r = rules.data["rules"]
    table = [(name, fn, r[name]) for name, fn in RULES.items() if rules.enabled(name)]
    derived = _Derived(aggregator)
    compiled = rules.compiled
    skip = derived.whitelisted(compiled["whitelist"]) | derived.verified(
        compiled["crawlers"], bool(r["fake_crawler"]["verify_dns"])
    )
    site = learn_site(aggregator, rules, served_families)
    ranked = derived.ranked_actions()[1] if rules.enabled("fingerprint_burst") else {}
    with no_gc():  # many small objects, none in a cycle: see parsers.no_gc
        return _judge(aggregator, rules, table, skip, site, ranked, derived)


def _judge(aggregator, rules, table, skip, site, ranked, derived) -> list[Finding]:
    findings = []
    r = rules.data["rules"]
    window, threshold, compiled = rules.window_seconds, rules.threshold, rules.compiled
    ctx = Context((0, ""), site, compiled, ranked, derived)
    for key, s in aggregator.stats.items():
        w, ip = key
        if ip in skip:
            continue
        ctx.key = key
        hits = [(name, hit) for name, fn, params in table if (hit := fn(s, params, ctx)) is not None]
        if not hits:
            continue
        names = [name for name, _ in hits]
        score = 1.0 - math.prod(1.0 - h.score for _, h in hits)
        flagged = score >= threshold - 1e-9
        evidence = {
            "window": [derived.iso(w), derived.iso(w + window)],
            "requests": s.requests,
            "statuses": dict(sorted(s.statuses.items())),
            "distinct_paths": len(s.pages),
            "user_agents": len(s.agents),
            **{name: h.evidence for name, h in hits},
        }
        block = max((r[n].get("block_minutes", 0) for n in names if r[n].get("block")), default=0)
        findings.append(
            Finding(
                ip=ip,
                window_start=w,
                window_end=w + window,
                rules=names,
                score=round(score, 6),
                flagged=flagged,
                reasons=[h.reason for _, h in hits],
                evidence=evidence,
                first_seen=s.first,
                last_seen=s.last,
                block_minutes=block if flagged else 0,
                scores={name: h.score for name, h in hits},
            )
        )
    findings.sort(key=lambda f: (-f.score, f.ip, f.window_start))
    return findings


def by_ip(findings: Iterable[Finding]) -> dict[str, Finding]:
    """One verdict per address over all windows: rules united, the highest score, flagged in any window."""
    out: dict[str, Finding] = {}
    with no_gc():
        _fold(findings, out)
    return out


def _fold(findings: Iterable[Finding], out: dict[str, Finding]) -> None:
    for f in findings:
        cur = out.get(f.ip)
        if cur is None:
            cur = out[f.ip] = object.__new__(Finding)  # a copy (rules and reasons grow below), without __init__
            cur.__dict__.update(f.__dict__)
            cur.rules, cur.reasons = list(f.rules), list(f.reasons)
            continue
        for rule, reason in zip(f.rules, f.reasons, strict=True):
            if rule not in cur.rules:
                cur.rules.append(rule)
                cur.reasons.append(reason)
        if f.score > cur.score:
            cur.score, cur.evidence, cur.window_start, cur.window_end = (
                f.score,
                f.evidence,
                f.window_start,
                f.window_end,
            )
        cur.flagged = cur.flagged or f.flagged
        cur.first_seen = min(cur.first_seen, f.first_seen)
        cur.last_seen = max(cur.last_seen, f.last_seen)
        cur.block_minutes = max(cur.block_minutes, f.block_minutes)


def flagged_ips(findings: Iterable[Finding]) -> dict[str, Finding]:
    return {ip: f for ip, f in by_ip(findings).items() if f.flagged}
