"""API abuse on the poll app: votes replayed, farmed, or cast by a campaign of blind browsers; scripted sign-ups."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from ..aggregate import SAMPLE, IPStats
from .base import Context, Hit

# --------------------------------------------------------------------------------- API abuse (votes, sign-ups)


@lru_cache(maxsize=64)
def _pattern(patterns: tuple[str, ...]) -> Callable[[str], object]:
    return re.compile("|".join(f"(?:{x})" for x in patterns), re.IGNORECASE).search


def _outcomes(s: IPStats, patterns: list[str], c: Context) -> dict[str, dict[int, int]]:
    """Its action POSTs on paths matching ``patterns``: ``path -> {status: count}`` (read-only: several rules ask
    for the same address and patterns, so it is worked out once per judge, in ``c.scratch``)."""
    cache = c.scratch.get(("outcomes", id(patterns)))  # the parameters and the IPStats live as long as the judge
    if cache is None:
        cache = c.scratch[("outcomes", id(patterns))] = {}
    found = cache.get(id(s))
    if found is not None:
        return found
    match = _pattern(tuple(patterns))
    out: dict[str, dict[int, int]] = {}
    cache[id(s)] = out
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
    votes = _outcomes(s, p["paths"], c)
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
    votes = {path: sum(n for st, n in v.items() if 200 <= st < 300) for path, v in _outcomes(s, p["paths"], c).items()}
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
    signups = _outcomes(s, p["paths"], c) if s.outcomes else {}
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
    mine = [path for path in _outcomes(s, p["paths"], c) if path in campaigns.get(c.key[1], ())]
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
    out = c.scratch.get("vote_campaign")  # the same parameters and site for every address of one judge
    if out is not None:
        return out
    key = ("vote_campaign", repr(sorted(p.items())), c.site.has_assets)
    out = c.derived.memo.get(key)
    if out is not None:
        c.scratch["vote_campaign"] = out
        return out
    voters: dict[str, set[str]] = {}
    blind: dict[str, set[str]] = {}
    for (w, ip), s in c.derived.stats.items():
        if not s.outcomes:
            continue
        is_blind = s.requests - s.auth_attempts <= p["max_other_requests"] + sum(
            sum(v.values()) for v in _outcomes(s, p["paths"], c).values()
        ) and _blind_browser(s, c, (w, ip))
        for path in _outcomes(s, p["paths"], c):
            voters.setdefault(path, set()).add(ip)
            if is_blind:
                blind.setdefault(path, set()).add(ip)
    out = {"_counts": {}}
    for path, ips in blind.items():
        if len(ips) >= p["min_addresses"] and len(ips) >= p["min_share"] * len(voters[path]):
            out["_counts"][path] = (len(ips), len(voters[path]))
            for ip in ips:
                out.setdefault(ip, set()).add(path)
    c.derived.memo[key] = c.scratch["vote_campaign"] = out
    return out
