"""The detector: named rules (``rules.yaml``) applied to per-IP aggregates, one window at a time.

``judge(aggregator, rules)`` returns a ``Finding`` for every (window, address) that tripped at least one rule;
``finding.flagged`` says whether its score reached the threshold. ``by_ip(findings)`` folds the windows of a
long log into one verdict per address (rules united, highest score). The hourly task (``detect_window``) and the
replay (``replay.replay_file``) both end here.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connection, transaction

from .aggregate import SAMPLE, Aggregator, IPStats
from .parsers import no_gc
from .rules import RuleSet


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


def _in(networks: tuple, addr) -> bool:
    return any(addr.version == n.version and addr in n for n in networks)


class _Derived:
    """What ``judge`` derives from the aggregates alone, computed once per aggregator (``Aggregator.memo``) and
    reused by every ruleset judged against it: in a 50-point sweep only the rule tests run 50 times."""

    def __init__(self, aggregator: Aggregator) -> None:
        self.memo = aggregator.memo()
        self.stats = aggregator.stats

    def addresses(self) -> dict[str, object]:
        addrs = self.memo.get("addresses")
        if addrs is None:
            addrs = self.memo["addresses"] = {ip: ipaddress.ip_address(ip) for _, ip in self.stats}
        return addrs

    def whitelisted(self, whitelist: tuple) -> set[str]:
        key = ("whitelisted", whitelist)
        out = self.memo.get(key)
        if out is None:
            out = self.memo[key] = {ip for ip, addr in self.addresses().items() if _in(whitelist, addr)}
        return out

    def verifier(self, crawlers: dict):
        """``verified(ip, claims)``: the address is in the network of one of the crawlers it claims to be."""
        key = ("verified", tuple((name, nets) for name, (_, nets) in crawlers.items()))
        cache = self.memo.get(key)
        if cache is None:
            cache = self.memo[key] = {}
        addrs = self.addresses()

        def verified(ip: str, claims: set[str]) -> bool:
            for name in claims:
                hit = cache.get((ip, name))
                if hit is None:
                    hit = cache[(ip, name)] = _in(crawlers[name][1], addrs[ip])
                if hit:
                    return True
            return False

        return verified

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


def judge(aggregator: Aggregator, rules: RuleSet) -> list[Finding]:
    """Apply ``rules`` to every (window, address) of ``aggregator`` (made with rules of the same fingerprint)."""
    if aggregator.fingerprint != rules.fingerprint:
        raise ValueError("these aggregates were classified with other path/agent patterns: aggregate again")
    r = rules.data["rules"]
    on = {name: rules.enabled(name) for name in rules.names}
    window = rules.window_seconds
    threshold = rules.threshold
    derived = _Derived(aggregator)
    whitelisted = derived.whitelisted(rules.compiled["whitelist"])
    verified_of = derived.verifier(rules.compiled["crawlers"])
    # Fingerprints shared by many addresses, per window (vote stuffing, sign-up spam): one pass, no per-IP query.
    ranked = derived.ranked_actions()[1] if on["fingerprint_burst"] else {}

    with no_gc():  # many small objects, none in a cycle: see parsers.no_gc
        return _judge(aggregator, rules, r, on, derived, whitelisted, verified_of, ranked, window, threshold)


def _judge(aggregator, rules, r, on, derived, whitelisted, verified_of, ranked, window, threshold) -> list[Finding]:
    findings = []
    for key, s in aggregator.stats.items():
        w, ip = key
        if ip in whitelisted:
            continue
        verified = bool(s.crawler_claims) and verified_of(ip, s.crawler_claims)
        hits = _rules_for(s, key, r, on, ranked, derived, verified)
        if not hits:
            continue
        names = [h[0] for h in hits]
        score = 1.0 - math.prod(1.0 - h[1] for h in hits)
        flagged = score >= threshold - 1e-9
        evidence = {
            "window": [derived.iso(w), derived.iso(w + window)],
            "requests": s.requests,
            "statuses": dict(sorted(s.statuses.items())),
            "distinct_paths": len(s.pages),
            "user_agents": len(s.agents),
            **{h[0]: h[3] for h in hits},
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
                reasons=[h[2] for h in hits],
                evidence=evidence,
                first_seen=s.first,
                last_seen=s.last,
                block_minutes=block if flagged else 0,
                scores={h[0]: h[1] for h in hits},
            )
        )
    findings.sort(key=lambda f: (-f.score, f.ip, f.window_start))
    return findings


def _rules_for(s: IPStats, key: tuple, r: dict, on: dict, ranked: dict, derived: _Derived, verified: bool) -> list:
    """``[(rule, score, reason, evidence)]`` for the rules ``s`` trips."""
    hits = []
    if on["volume"] and s.requests > r["volume"]["max_requests"]:
        p = r["volume"]
        hits.append(("volume", p["score"], f"{s.requests} requests in the window (> {p['max_requests']})", {}))
    if on["sensitive_paths"] and s.sensitive >= r["sensitive_paths"]["min_hits"]:
        paths = derived.sample(key, "sensitive_paths", s.sensitive_paths)
        hits.append(
            (
                "sensitive_paths",
                r["sensitive_paths"]["score"],
                f"{s.sensitive} refused requests for admin/login paths ({', '.join(paths)})",
                {"hits": s.sensitive, "paths": paths},
            )
        )
    if on["cms_probe"] and s.cms >= r["cms_probe"]["min_hits"]:
        paths = derived.sample(key, "cms_paths", s.cms_paths)
        hits.append(
            (
                "cms_probe",
                r["cms_probe"]["score"],
                f"{s.cms} requests for CMS/dotfile paths this site does not run ({', '.join(paths)})",
                {"hits": s.cms, "paths": paths},
            )
        )
    p = r["not_found_probe"]
    if (
        on["not_found_probe"]
        and len(s.probe_paths) >= p["min_distinct_paths"]
        and s.statuses.get("4xx", 0) >= p["min_4xx_share"] * s.requests
    ):
        paths = derived.sample(key, "probe_paths", s.probe_paths)
        hits.append(
            (
                "not_found_probe",
                p["score"],
                f"4xx on {len(s.probe_paths)} distinct paths",
                {"distinct_4xx_paths": len(s.probe_paths), "paths": paths},
            )
        )
    p = r["auth_failures"]
    if (
        on["auth_failures"]
        and s.auth_failures >= p["min_failures"]
        and s.auth_failures >= p["min_failure_ratio"] * s.auth_attempts
    ):
        hits.append(
            (
                "auth_failures",
                p["score"],
                f"{s.auth_failures} failed logins of {s.auth_attempts}",
                {"failures": s.auth_failures, "attempts": s.auth_attempts},
            )
        )
    p = r["bad_user_agent"]
    if on["bad_user_agent"]:
        if s.scanner:
            agents = derived.sample(key, "scanner_agents", s.scanner_agents)
            hits.append(("bad_user_agent", p["score"], f"scanner user agent ({agents[0][:60]})", {"agents": agents}))
        elif s.absent_agent >= p["min_absent"]:
            hits.append(
                (
                    "bad_user_agent",
                    p["absent_score"],
                    f"{s.absent_agent} requests without a user agent",
                    {"absent": s.absent_agent},
                )
            )
    if on["fake_crawler"] and s.crawler_claims and not verified:
        claims = sorted(s.crawler_claims)
        hits.append(
            (
                "fake_crawler",
                r["fake_crawler"]["score"],
                f"claims to be {', '.join(claims)} from outside its networks",
                {"claims": claims},
            )
        )
    p = r["scraper"]
    if (
        on["scraper"]
        and not verified
        and len(s.pages) >= p["min_distinct_paths"]
        and len(s.agents) <= p["max_user_agents"]
        and s.referred <= p["max_referrer_ratio"] * s.requests
    ):
        hits.append(
            (
                "scraper",
                p["score"],
                f"{len(s.pages)} distinct pages, {len(s.agents)} user agent(s), {s.referred} referred",
                {"distinct_paths": len(s.pages), "paths": derived.sample(key, "pages", s.pages)},
            )
        )
    p = r["fingerprint_burst"]
    if on["fingerprint_burst"] and s.actions:
        # The most shared action (ties: the greater fingerprint) among those shared by at least min_ips addresses
        # that make up at least min_action_share of the address's requests: the first such in ``ranked`` order.
        min_ips, share = p["min_ips"], p["min_action_share"] * s.requests
        for fp, n, ips in ranked[key]:
            if ips < min_ips:
                break
            if n >= share:
                hits.append(
                    (
                        "fingerprint_burst",
                        p["score"],
                        f"{n} of {s.requests} requests are one action shared by {ips} addresses ({fp.split(' | ')[0]})",
                        {"fingerprint": fp[:300], "addresses": ips, "count": n},
                    )
                )
                break
    return hits


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


# ------------------------------------------------------------------------------------------- the database

WORK_MEM = "64MB"
GROUPS_SQL = """
SELECT (floor(extract(epoch FROM timestamp) / %(w)s) * %(w)s)::bigint, host(ip_address), method, path, status_code,
       user_agent, referrer, count(*), extract(epoch FROM min(timestamp))::float8,
       extract(epoch FROM max(timestamp))::float8
FROM tracking_requestlog
WHERE timestamp >= %(start)s AND timestamp < %(end)s AND ip_address IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""


def aggregate_request_log(*, start: datetime, end: datetime, rules: RuleSet) -> Aggregator:
    """``RequestLog`` rows in ``[start, end)`` reduced by one ``GROUP BY`` and classified: no per-row work in SQL
    beyond the scan, no per-IP query."""
    aggregator = Aggregator(rules)
    add = aggregator.add_group
    # The epoch seconds come as float8, not numeric: psycopg turns numeric into Decimal, ~4x slower to read, and
    # float8 holds the same double ``float(Decimal)`` would give. work_mem for this one statement lets the GROUP
    # BY of a busy hour (100k rows) hash in memory instead of sorting through temporary files.
    with transaction.atomic(), connection.cursor() as cur, no_gc():
        cur.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        cur.execute(GROUPS_SQL, {"w": rules.window_seconds, "start": start, "end": end})
        while True:
            rows = cur.fetchmany(20_000)
            if not rows:
                break
            for w, ip, method, path, status, agent, referrer, n, first, last in rows:
                add(w, ip, method, path, status, agent, referrer, n, first, last)
    return aggregator
