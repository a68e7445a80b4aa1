"""The detector: named rules (``rules.yaml``) applied to per-IP aggregates, one window at a time.

``judge(aggregator, rules)`` returns a ``Finding`` for every (window, address) that tripped at least one rule;
``finding.flagged`` says whether its score reached the threshold. ``by_ip(findings)`` folds the windows of a
long log into one verdict per address (rules united, highest score). The hourly task (``detect_window``) and the
replay (``replay.replay_file``) both end here.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

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


# ------------------------------------------------------------------------------------------- what the site serves


@dataclass(frozen=True)
class Site:
    """What the judged traffic says about the site it was sent to (learned once per aggregate, see ``learn``)."""

    own_hosts: frozenset[str]  # referrer hosts that are the site itself
    served: frozenset[str]  # probe families the site runs (not probes there)
    has_assets: bool  # the site serves static files that browsers load
    browsers_refer: bool  # most browsers send a Referer here (the site sets no no-referrer policy)
    failing_logins: dict[int, int]  # window -> addresses whose logins all failed (login_campaign)


def learn_site(aggregator: Aggregator, rules: RuleSet, served_families: Iterable[str] = ()) -> Site:
    """The site profile from the aggregates: its own host (the referrer of its static files, else the commonest
    referrer), the probe families it serves (``site.served_min_clients`` distinct clients got a 2xx from them while
    browsing, plus ``served_families`` from the URL configuration) and whether browsers load assets there."""
    site = rules.data["site"]
    memo = aggregator.memo()
    max_other = rules.data["rules"]["login_campaign"]["max_other_requests"]
    key = ("site", repr(site), tuple(sorted(served_families)), max_other)
    if key in memo:
        return memo[key]
    asset_hosts: dict[str, int] = {}
    ref_hosts: dict[str, int] = {}
    family_clients: dict[str, set[str]] = {}  # clients that loaded assets too (where the site has assets)
    family_browsers: dict[str, set[str]] = {}  # clients that requested several pages (where it has none)
    failing: dict[int, int] = {}
    requests = static = browsers = referring = 0
    for (w, ip), s in aggregator.stats.items():
        requests += s.requests
        static += s.static
        for host in s.asset_ref_hosts:
            asset_hosts[host] = asset_hosts.get(host, 0) + 1
        for host in s.ref_hosts:
            ref_hosts[host] = ref_hosts.get(host, 0) + 1
        for family in s.served_families:
            if s.static:
                family_clients.setdefault(family, set()).add(ip)
            if len(s.pages) >= 3:
                family_browsers.setdefault(family, set()).add(ip)
        if _only_failed_logins(s, max_other):
            failing[w] = failing.get(w, 0) + 1
        if s.browser >= 3:
            browsers += 1
            referring += s.referred > 0
    own = set(site["own_hosts"])
    if not own:
        counts = asset_hosts or ref_hosts
        if counts:
            top = max(counts.values())
            own = {h for h, n in counts.items() if n >= max(2, top // 4)} or {max(counts, key=lambda h: counts[h])}
    has_assets = requests > 0 and static >= site["min_static_share"] * requests
    # A family is served when readers browse it: a 2xx with a referrer from clients that also loaded assets (or,
    # on a site without assets, requested several pages), so probes answered 200 by a catch-all do not count.
    readers = family_clients if has_assets else family_browsers
    served = {f for f, ips in readers.items() if len(ips) >= site["served_min_clients"]}
    out = Site(
        own_hosts=frozenset(own),
        served=frozenset(served | set(served_families)),
        has_assets=has_assets,
        browsers_refer=browsers >= 5 and referring >= 0.5 * browsers,  # unknown (False) on too few browsers
        failing_logins=failing,
    )
    memo[key] = out
    return out


def _only_failed_logins(s: IPStats, max_other: int) -> bool:
    return s.auth_failures > 0 and s.auth_failures == s.auth_attempts and s.requests - s.auth_attempts <= max_other


# ------------------------------------------------------------------------------------------- the rules


class Hit(NamedTuple):
    score: float
    reason: str
    evidence: dict


@dataclass
class Context:
    """What a rule may look at besides the address's own ``IPStats``."""

    key: tuple[int, str]
    site: Site
    compiled: dict
    ranked: dict
    derived: _Derived

    @property
    def login_paths(self) -> Callable[[str], object]:
        return self.compiled["auth"].search

    def sample(self, name: str, values: set[str]) -> list[str]:
        return self.derived.sample(self.key, name, values)


def _requests(s: IPStats, *kinds: str) -> list[str]:
    out: list[str] = []
    for kind in kinds:
        out += [x for x in s.examples.get(kind, ()) if x not in out]
    return out[:SAMPLE]


def rule_cms_probe(s: IPStats, p: dict, c: Context) -> Hit | None:
    secret = p["secret_families"]
    # not a probe: a family the site serves, or one this client browsed (a 2xx with a referrer, assets loaded:
    # the owner in their own phpMyAdmin); secrets are never served
    browsed = s.served_families if s.static else ()
    hits = {f: n for f, n in s.probes.items() if f in secret or (f not in c.site.served and f not in browsed)}
    total = sum(hits.values())
    if not hits or total < p["min_hits"]:
        return None
    score = max(p["score"], p["secret_score"]) if any(f in secret for f in hits) else p["score"]
    families = sorted(hits)
    kinds = [f"probe:{f}" for f in families]
    shown = ", ".join(_requests(s, *kinds)[:3])
    return Hit(
        score,
        f"{total} request(s) for {', '.join(families)} paths this site does not serve ({shown})",
        {"hits": total, "families": families, "requests": _requests(s, *kinds)},
    )


def rule_payload(s: IPStats, p: dict, c: Context) -> Hit | None:
    """An attack payload in a request (``payloads.py``): one suffices, as one probe does; which family says what it
    tried (SQL injection, XSS, traversal, shell, PHP, Java/template injection)."""
    if not s.payloads:
        return None
    families = sorted(s.payloads)
    total = sum(s.payloads.values())
    requests = _requests(s, *(f"payload:{f}" for f in families))
    return Hit(
        p["score"],
        f"{total} request(s) carrying a {', '.join(families)} payload ({requests[0][:160]})",
        {"hits": total, "families": families, "requests": requests},
    )


def rule_sensitive_paths(s: IPStats, p: dict, c: Context) -> Hit | None:
    if s.sensitive < p["min_hits"] or s.sensitive_ok:
        return None
    paths = c.sample("sensitive_paths", s.sensitive_paths)
    return Hit(
        p["score"],
        f"{s.sensitive} refused requests for admin/login paths ({', '.join(paths)})",
        {"hits": s.sensitive, "paths": paths, "requests": _requests(s, "sensitive")},
    )


def rule_not_found_probe(s: IPStats, p: dict, c: Context) -> Hit | None:
    if len(s.probe_paths) < p["min_distinct_paths"] or s.statuses.get("4xx", 0) < p["min_4xx_share"] * s.requests:
        return None
    paths = c.sample("probe_paths", s.probe_paths)
    return Hit(
        p["score"],
        f"4xx on {len(s.probe_paths)} distinct paths",
        {"distinct_4xx_paths": len(s.probe_paths), "paths": paths},
    )


def rule_auth_failures(s: IPStats, p: dict, c: Context) -> Hit | None:
    if s.auth_failures < p["min_failures"] or s.auth_failures < p["min_failure_ratio"] * s.auth_attempts:
        return None
    return Hit(
        p["score"],
        f"{s.auth_failures} failed logins of {s.auth_attempts}",
        {"failures": s.auth_failures, "attempts": s.auth_attempts, "requests": _requests(s, "login_failure")},
    )


def rule_login_campaign(s: IPStats, p: dict, c: Context) -> Hit | None:
    if not _only_failed_logins(s, p["max_other_requests"]):
        return None
    peers = c.site.failing_logins.get(c.key[0], 0)
    if peers < p["min_addresses"]:
        return None
    return Hit(
        p["score"],
        f"{s.auth_failures} failed login(s), nothing else, like {peers - 1} other address(es) in this window",
        {"failures": s.auth_failures, "addresses": peers, "requests": _requests(s, "login_failure")},
    )


def rule_bad_user_agent(s: IPStats, p: dict, c: Context) -> Hit | None:
    if s.scanner:
        agents = c.sample("scanner_agents", s.scanner_agents)
        return Hit(p["score"], f"scanner or spam-bot user agent ({agents[0][:60]})", {"agents": agents})
    if s.absent_agent and s.absent_agent == s.requests:
        return Hit(p["absent_score"], f"{s.absent_agent} request(s) without a user agent", {"absent": s.absent_agent})
    return None


def rule_obsolete_agent(s: IPStats, p: dict, c: Context) -> Hit | None:
    if not (s.impossible or s.obsolete):
        return None
    agents = c.sample("odd_agents", s.odd_agents)
    if s.impossible:
        return Hit(p["impossible_score"], f"a user agent no browser sends ({agents[0][:60]})", {"agents": agents})
    return Hit(p["score"], f"a browser obsolete for a decade ({agents[0][:60]})", {"agents": agents})


def rule_fake_browser(s: IPStats, p: dict, c: Context) -> Hit | None:
    """A browser user agent that behaves like none. Weak when it only sent no referrer and loaded no asset (a human
    typing one URL does that); stronger when it POSTed without a referrer where this site's browsers send one
    (a browser always has a page, hence a referrer, before it POSTs), strongest when it never GETs anything."""
    if s.browser < p["min_requests"] or s.browser < s.requests or s.referred or (c.site.has_assets and s.static):
        return None
    if s.browser_post_unreferred and c.site.browsers_refer:
        if not s.get:
            return Hit(p["blind_post_score"], f"a browser user agent that only POSTs ({s.post}), never GETs a page",
                       {"requests": _requests(s, "form_post", "login_failure")})  # fmt: skip
        return Hit(p["post_score"], f"a browser user agent that POSTs ({s.post}) without a referrer", {})
    why = "no referrer and no page asset" if c.site.has_assets else "no referrer"
    return Hit(p["score"], f"a browser user agent that behaves like none ({why} in {s.requests} requests)", {})


def rule_fake_crawler(s: IPStats, p: dict, c: Context) -> Hit | None:
    if not s.crawler_claims:
        return None  # a verified claim never gets here (``judge`` skips verified crawlers)
    claims = sorted(s.crawler_claims)
    return Hit(
        p["score"],
        f"claims to be {', '.join(claims)} from outside its published networks",
        {"claims": claims, "lists": {n: c.compiled["crawlers"][n].retrieved for n in claims}},
    )


def rule_scraper(s: IPStats, p: dict, c: Context) -> Hit | None:
    if (
        len(s.pages) < p["min_distinct_paths"]
        or len(s.agents) > p["max_user_agents"]
        or s.referred > p["max_referrer_ratio"] * s.requests
        or s.declared_bot
    ):
        return None
    return Hit(
        p["score"],
        f"{len(s.pages)} distinct pages, {len(s.agents)} user agent(s), {s.referred} referred",
        {"distinct_paths": len(s.pages), "paths": c.sample("pages", s.pages)},
    )


def rule_agent_rotation(s: IPStats, p: dict, c: Context) -> Hit | None:
    n = len(s.agents)
    if n < p["min_agents"] or s.requests > p["max_requests_per_agent"] * n or s.static or s.declared_bot:
        return None
    return Hit(
        p["score"],
        f"{n} user agents in {s.requests} requests, no asset loaded",
        {"agents": c.sample("agents", s.agents)},
    )


def rule_referrer_spam(s: IPStats, p: dict, c: Context) -> Hit | None:
    if not s.offsite:
        return None
    benign = c.compiled["benign_hosts"].search
    own = c.site.own_hosts
    offsite = {host: n for host, n in s.offsite.items() if host not in own and not benign(host)}
    if not offsite:
        return None
    words = c.compiled["spam_words"].search
    spammy = sorted(host for host in offsite if words(host))
    if spammy:
        return Hit(p["keyword_score"], f"a spam referrer ({spammy[0][:80]})", {"referrers": spammy[:SAMPLE]})
    if c.site.has_assets and s.static:
        return None  # a reader who followed a link loads the page's assets
    host, n = max(offsite.items(), key=lambda kv: (kv[1], kv[0]))
    if n < p["min_repeats"] or len(s.pages) > 3:
        return None
    pages = c.sample("pages", s.pages)
    return Hit(
        p["score"],
        f"{n} requests for {', '.join(pages)} from the off-site referrer {host[:60]}, nothing else loaded",
        {"referrers": [host], "repeats": n, "pages": pages},
    )


def rule_form_spam(s: IPStats, p: dict, c: Context) -> Hit | None:
    """A form (a login form too) POSTed without GETting it, or at machine speed after the GET, with no asset
    loaded. Medium when the client names itself a tool (curl, a script): a developer testing their own form."""
    if not s.posts or s.static:
        return None
    logins = c.login_paths
    fast = sorted(
        path
        for path, posted in s.posts.items()
        if (path not in s.gets or posted - s.gets[path] < p["max_seconds"])
        and (s.auth_failures or not logins(path))  # a blind login that succeeded guessed nothing
    )
    if not fast:
        return None
    blind = [path for path in fast if path not in s.gets]
    how = "without loading the form" if blind else f"within {p['max_seconds']} s of loading the form"
    tool = s.requests > s.browser + s.absent_agent
    # A reader who loaded the page in an earlier window (its assets cached) posts without a GET here, but from a
    # page of this site: a blind POST whose every referrer is this site is only medium evidence. Not for a login
    # form: people submit those right after loading them, and brute-force tools send the form as referrer.
    from_site = bool(blind) and len(blind) == len(fast) and "" not in s.post_ref_hosts and not s.auth_attempts
    from_site = from_site and s.post_ref_hosts <= c.site.own_hosts
    return Hit(
        p["tool_score"] if tool or from_site else p["score"],
        f"form POSTs {how}, no page asset loaded ({', '.join(fast[:3])})"
        + (" by a tool" if tool else "")
        + (" (referred by this site)" if from_site else ""),
        {"forms": fast[:SAMPLE], "requests": _requests(s, "form_post")},
    )


def rule_spam_signature(s: IPStats, p: dict, c: Context) -> Hit | None:
    if not s.spam_signature or (c.site.has_assets and s.static):
        return None
    return Hit(
        p["score"],
        f"{s.spam_signature} trackback/pingback/comment POST(s) from a client that loaded no page",
        {"requests": _requests(s, "spam_signature")},
    )


def rule_bad_request(s: IPStats, p: dict, c: Context) -> Hit | None:
    if not s.bad_request:
        return None
    return Hit(
        p["score"],
        f"{s.bad_request} request(s) no browser sends (garbage, a proxy request or an unusual method)",
        {"requests": _requests(s, "bad_request")},
    )


def rule_volume(s: IPStats, p: dict, c: Context) -> Hit | None:
    if s.requests <= p["max_requests"]:
        return None
    return Hit(p["score"], f"{s.requests} requests in the window (> {p['max_requests']})", {})


def rule_fingerprint_burst(s: IPStats, p: dict, c: Context) -> Hit | None:
    # The most shared action (ties: the greater fingerprint) among those shared by at least min_ips addresses
    # that make up at least min_action_share of the address's requests: the first such in ``ranked`` order.
    if not s.actions:
        return None
    min_ips, share = p["min_ips"], p["min_action_share"] * s.requests
    for fp, n, ips in c.ranked[c.key]:
        if ips < min_ips:
            return None
        if n >= share:
            return Hit(
                p["score"],
                f"{n} of {s.requests} requests are one action shared by {ips} addresses ({fp.split(' | ')[0]})",
                {"fingerprint": fp[:300], "addresses": ips, "count": n},
            )
    return None


# --------------------------------------------------------------------------------- API abuse (votes, sign-ups)


@lru_cache(maxsize=64)
def _pattern(patterns: tuple[str, ...]) -> Callable[[str], object]:
    return re.compile("|".join(f"(?:{x})" for x in patterns), re.IGNORECASE).search


def _outcomes(s: IPStats, patterns: list[str]) -> dict[str, dict[int, int]]:
    """Its action POSTs on paths matching ``patterns``: ``path -> {status: count}``."""
    match = _pattern(tuple(patterns))
    out: dict[str, dict[int, int]] = {}
    for key, n in s.outcomes.items():
        path, _, status = key.rpartition(" ")
        if match(path):
            by_status = out.setdefault(path, {})
            by_status[int(status)] = by_status.get(int(status), 0) + n
    return out


def _never_loaded_app(s: IPStats, c: Context) -> bool | None:
    """True: in this window it loaded no page of the site and no asset (only API calls); None where the site has no
    assets, so a client that loads nothing cannot be told from an API client."""
    if not c.site.has_assets:
        return None
    api = c.compiled["api"].search
    return not s.static and all(api(path) for path in s.gets)


def rule_vote_replay(s: IPStats, p: dict, c: Context) -> Hit | None:
    """One account voting again and again: each repeat is refused 409 (already voted). A person double-clicking
    gets one; a NAT's many voters get a few among many successes; a developer testing their own API does much
    else besides voting (votes under ``min_vote_share`` of its requests)."""
    if not s.outcomes:
        return None
    votes = _outcomes(s, p["paths"])
    total = sum(sum(v.values()) for v in votes.values())
    conflicts = sum(v.get(p["conflict_status"], 0) for v in votes.values())
    if (
        conflicts < p["min_conflicts"]
        or conflicts < p["min_conflict_share"] * total
        or total < p["min_vote_share"] * (s.requests - s.static)
    ):
        return None
    return Hit(
        p["score"],
        f"{conflicts} of {total} vote(s) refused as already cast ({', '.join(sorted(votes)[:3])})",
        {"conflicts": conflicts, "votes": total, "paths": sorted(votes)[:SAMPLE]},
    )


def rule_vote_farm(s: IPStats, p: dict, c: Context) -> Hit | None:
    """Many accounts voting on ONE poll from one address, reading next to nothing and loading no page: a script
    cycling through accounts. A NAT behind a viral poll votes as often, but its people load the page, read it and
    its results (several reads per vote), and an app's users vote on many polls."""
    if not s.outcomes or _never_loaded_app(s, c) is False:
        return None
    votes = {path: sum(n for st, n in v.items() if 200 <= st < 300) for path, v in _outcomes(s, p["paths"]).items()}
    path, n = max(votes.items(), key=lambda kv: (kv[1], kv[0]), default=("", 0))
    reads = s.get - s.static
    if n < p["min_votes"] or reads > p["max_reads_per_vote"] * n:
        return None
    return Hit(
        p["score"],
        f"{n} successful votes on {path} with {reads} read(s) and no page loaded",
        {"votes": n, "path": path, "reads": reads, "logins": s.auth_attempts},
    )


def _blind_browser(s: IPStats, c: Context, key: tuple[int, str]) -> bool:
    """A browser user agent (every request) that loaded no page and no asset in this window, nor in the window
    before when that one is in the aggregates (a person who loaded the app at 10:59 acts at 11:00)."""
    if s.browser < s.requests or not _never_loaded_app(s, c):
        return False
    before = c.derived.stats.get((key[0] - c.derived.window, key[1]))
    return before is None or not before.static


def rule_blind_signup(s: IPStats, p: dict, c: Context) -> Hit | None:
    """Accounts created by a script: a burst of sign-ups from one address (``burst_score``), or a "browser" that
    signs up without ever having shown the site's page (its form lives in that page)."""
    signups = _outcomes(s, p["paths"]) if s.outcomes else {}
    if not signups:
        return None
    made = sum(n for v in signups.values() for st, n in v.items() if 200 <= st < 300)
    tried = sum(sum(v.values()) for v in signups.values())
    reads = s.get - s.static
    if made >= p["min_burst"] and reads <= p["max_reads_per_signup"] * made and not s.static:
        return Hit(p["burst_score"], f"{made} accounts created with {reads} read(s) and no asset loaded", {})
    if s.get or not _blind_browser(s, c, c.key):
        return None
    return Hit(
        p["score"],
        f"a browser user agent that signs up ({tried} POST(s)) without having loaded the site",
        {"signups": tried, "paths": sorted(signups)[:SAMPLE]},
    )


def rule_vote_campaign(s: IPStats, p: dict, c: Context) -> Hit | None:
    """Rotating addresses voting on one poll: each one votes without having loaded the site (a browser user agent
    that never showed the poll's page), and such voters are many and most of that poll's voters over the judged
    span. A viral poll's voters load the page; a mobile app names itself in its user agent."""
    if not s.outcomes:
        return None
    campaigns = _vote_campaigns(p, c)
    mine = [path for path in _outcomes(s, p["paths"]) if path in campaigns.get(c.key[1], ())]
    if not mine:
        return None
    blind, voters = campaigns["_counts"][mine[0]]
    return Hit(
        p["score"],
        f"votes on {mine[0]} without loading the site, like {blind - 1} other address(es) ({voters} voted there)",
        {"path": mine[0], "blind_voters": blind, "voters": voters},
    )


def _vote_campaigns(p: dict, c: Context) -> dict:
    """``ip -> paths`` where that address is one of a campaign's blind voters, and ``_counts: path -> (blind,
    voters)``; computed once per aggregate and parameters."""
    key = ("vote_campaign", repr(sorted(p.items())), c.site.has_assets)
    out = c.derived.memo.get(key)
    if out is not None:
        return out
    voters: dict[str, set[str]] = {}
    blind: dict[str, set[str]] = {}
    for (w, ip), s in c.derived.stats.items():
        if not s.outcomes:
            continue
        is_blind = s.requests - s.auth_attempts <= p["max_other_requests"] + sum(
            sum(v.values()) for v in _outcomes(s, p["paths"]).values()
        ) and _blind_browser(s, c, (w, ip))
        for path in _outcomes(s, p["paths"]):
            voters.setdefault(path, set()).add(ip)
            if is_blind:
                blind.setdefault(path, set()).add(ip)
    out = {"_counts": {}}
    for path, ips in blind.items():
        if len(ips) >= p["min_addresses"] and len(ips) >= p["min_share"] * len(voters[path]):
            out["_counts"][path] = (len(ips), len(voters[path]))
            for ip in ips:
                out.setdefault(ip, set()).add(path)
    c.derived.memo[key] = out
    return out


def rule_page_walk(s: IPStats, p: dict, c: Context) -> Hit | None:
    """A scraper walking the site: many distinct pages (or API resources), each fetched about once, with one or
    two user agents, no asset and hardly a Referer (a reader follows links, so each page is referred by the one
    before). Declared bots are the crawler rules' business. Off where the site has no assets (an API-only log, or
    a request log that does not see static files): an app's user reading many polls looks the same there."""
    pages = len(s.pages)
    if (
        pages < p["min_distinct_paths"]
        or s.requests > p["max_requests_per_path"] * pages
        or len(s.agents) > p["max_user_agents"]
        or s.referred > p["max_referrer_ratio"] * s.requests
        or s.declared_bot
        or s.static
        or not c.site.has_assets
    ):
        return None
    return Hit(
        p["score"],
        f"{pages} distinct pages in {s.requests} requests, {s.referred} referred, no asset loaded",
        {"distinct_paths": pages, "paths": c.sample("pages", s.pages)},
    )


# name -> the rule; the order is the order of reasons in a finding. Each takes the address's IPStats, its
# parameters from rules.yaml and the Context, and returns a Hit or None.
RULES: dict[str, Callable[[IPStats, dict, Context], Hit | None]] = {
    "cms_probe": rule_cms_probe,
    "payload": rule_payload,
    "sensitive_paths": rule_sensitive_paths,
    "not_found_probe": rule_not_found_probe,
    "auth_failures": rule_auth_failures,
    "login_campaign": rule_login_campaign,
    "bad_user_agent": rule_bad_user_agent,
    "obsolete_agent": rule_obsolete_agent,
    "fake_browser": rule_fake_browser,
    "fake_crawler": rule_fake_crawler,
    "scraper": rule_scraper,
    "agent_rotation": rule_agent_rotation,
    "referrer_spam": rule_referrer_spam,
    "form_spam": rule_form_spam,
    "spam_signature": rule_spam_signature,
    "bad_request": rule_bad_request,
    "volume": rule_volume,
    "fingerprint_burst": rule_fingerprint_burst,
    "vote_replay": rule_vote_replay,
    "vote_farm": rule_vote_farm,
    "vote_campaign": rule_vote_campaign,
    "blind_signup": rule_blind_signup,
    "page_walk": rule_page_walk,
}


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
