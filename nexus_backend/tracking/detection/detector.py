"""The detector: named rules (``rules.yaml``) applied to per-IP aggregates, one window at a time.

``judge(aggregator, rules)`` returns a ``Finding`` for every (window, address) that tripped at least one rule;
``finding.flagged`` says whether its score reached the threshold. ``by_ip(findings)`` folds the windows of a
long log into one verdict per address (rules united, highest score). The hourly task (``detect_window``) and the
replay (``replay.replay_file``) both end here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from .aggregate import Aggregator
from .database import GROUPS_SQL, WORK_MEM, account_failures, aggregate_request_log
from .derived import Derived, _iso, fcrdns
from .families import RULES, Context, Hit
from .parsers import no_gc
from .rules import RuleSet
from .site import Site, learn_site

__all__ = ["GROUPS_SQL", "RULES", "WORK_MEM", "Context", "Finding", "Hit", "Site", "account_failures",
           "aggregate_request_log", "by_ip", "fcrdns", "flagged_ips", "judge", "learn_site"]  # fmt: skip


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
    addresses: list[str] = field(default_factory=list)  # ip is an IPv6 /64: the addresses seen inside it

    def members(self) -> list[str]:
        """The addresses this verdict is about: those seen inside an IPv6 /64, else the address itself."""
        return self.addresses or [self.ip]

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


def judge(
    aggregator: Aggregator, rules: RuleSet, *, served_families: Iterable[str] = (), accounts: dict | None = None
) -> list[Finding]:
    """Apply ``rules`` to every (window, address) of ``aggregator`` (made with rules of the same fingerprint).

    ``served_families``: probe families the site is known to serve besides what the traffic shows (the hourly task
    passes those its URL configuration answers). ``accounts``: failed logins per target account
    (``database.account_failures``; the hourly task's request log names the account a login tried, a web
    server's log does not)."""
    if aggregator.fingerprint != rules.fingerprint:
        raise ValueError("these aggregates were classified with other path/agent patterns: aggregate again")
    r = rules.data["rules"]
    table = [(name, fn, r[name]) for name, fn in RULES.items() if rules.enabled(name)]
    derived = Derived(aggregator)
    compiled = rules.compiled
    skip = derived.whitelisted(compiled["whitelist"]) | derived.verified(
        compiled["crawlers"], bool(r["fake_crawler"]["verify_dns"])
    )
    site = learn_site(aggregator, rules, served_families)
    ranked = derived.ranked_actions()[1] if rules.enabled("fingerprint_burst") else {}
    with no_gc():  # many small objects, none in a cycle: see parsers.no_gc
        return _judge(aggregator, rules, table, skip, site, ranked, derived, accounts or {})


RESULTS_KEPT = 64  # rule results kept per aggregator (a sweep changes a few rules' parameters at a time)


def _judge(aggregator, rules, table, skip, site, ranked, derived, accounts) -> list[Finding]:
    r = rules.data["rules"]
    window, threshold, compiled = rules.window_seconds, rules.threshold, rules.compiled
    ctx = Context((0, ""), site, compiled, ranked, derived, accounts)
    # A rule's hits depend only on the aggregates, its own parameters and the context; the context is the same for
    # every ruleset whose patterns, site profile, skipped addresses and account failures are the same. So each
    # rule's hits are kept with the aggregates (Aggregator.memo), and a sweep that changes the threshold or one
    # rule's numbers runs only that rule again.
    memo = aggregator.memo()
    cache = memo.setdefault("rule_hits", {})
    context = (
        rules.fingerprint,
        repr(rules.data["site"]),
        id(compiled["crawlers"]),  # the published networks, read again only when their files change
        id(site),  # learn_site keeps one Site per profile in the same memo
        frozenset(skip),
        tuple(sorted(accounts.items())),
    )
    found: dict[tuple[int, str], list[tuple[str, Hit]]] = {}
    stats = aggregator.stats
    judged = None
    for name, fn, params in table:
        cached = (name, repr(params), context)
        hits = cache.get(cached)
        if hits is None:
            if judged is None:
                judged = [(k, s) for k, s in stats.items() if k[1] not in skip]
            hits = {}
            for k, s in judged:
                ctx.key = k
                hit = fn(s, params, ctx)
                if hit is not None:
                    hits[k] = hit
            if len(cache) >= RESULTS_KEPT:
                cache.clear()
            cache[cached] = hits
        for k, hit in hits.items():
            pairs = found.get(k)
            if pairs is None:
                found[k] = [(name, hit)]
            else:
                pairs.append((name, hit))
    findings = []
    for key, hits in found.items():
        w, ip = key
        s = stats[key]
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
                addresses=sorted(s.members) if s.members else [],
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
        if f.addresses and f.addresses != cur.addresses:
            cur.addresses = sorted(set(cur.addresses) | set(f.addresses))
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
