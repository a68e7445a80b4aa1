"""User agents: scanners and spam bots, obsolete or impossible browsers, browsers that behave like none, crawlers
from outside their published networks, one address rotating agents, one /64 rotating addresses."""

from __future__ import annotations

from ..aggregate import IPStats
from .base import Context, Hit, requests_of


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
                       {"requests": requests_of(s, "form_post", "login_failure")})  # fmt: skip
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


def rule_agent_rotation(s: IPStats, p: dict, c: Context) -> Hit | None:
    n = len(s.agents)
    if n < p["min_agents"] or s.requests > p["max_requests_per_agent"] * n or s.static or s.declared_bot:
        return None
    return Hit(
        p["score"],
        f"{n} user agents in {s.requests} requests, no asset loaded",
        {"agents": c.sample("agents", s.agents)},
    )


def rule_address_rotation(s: IPStats, p: dict, c: Context) -> Hit | None:
    """One host cycling through the addresses of its IPv6 /64, a few requests from each, with one or two user agents
    and no asset loaded. Privacy addresses give a device a new address a day, not one every few requests, and a
    network of many devices sharing a /64 (a campus, an office) brings many user agents and loads pages' assets."""
    n = len(s.members)
    if (
        n < p["min_addresses"]
        or s.requests > p["max_requests_per_address"] * n
        or len(s.agents) > p["max_agents"]
        or s.static
        or s.declared_bot
    ):
        return None
    return Hit(
        p["score"],
        f"{n} addresses of one /64 in {s.requests} requests, {len(s.agents)} user agent(s), no asset loaded",
        {"addresses": n, "sample": c.sample("members", s.members)},
    )
