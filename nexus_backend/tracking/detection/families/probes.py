"""Probes: software the site does not run, attack payloads, refused admin/login pages, 4xx sweeps, requests no
browser sends."""

from __future__ import annotations

from ..aggregate import IPStats
from .base import Context, Hit, requests_of


def rule_cms_probe(s: IPStats, p: dict, c: Context) -> Hit | None:
    if not s.probes:
        return None
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
    shown = ", ".join(requests_of(s, *kinds)[:3])
    return Hit(
        score,
        f"{total} request(s) for {', '.join(families)} paths this site does not serve ({shown})",
        {"hits": total, "families": families, "requests": requests_of(s, *kinds)},
    )


def rule_payload(s: IPStats, p: dict, c: Context) -> Hit | None:
    """An attack payload in a request (``payloads.py``): one suffices, as one probe does; which family says what it
    tried (SQL injection, XSS, traversal, shell, PHP, Java/template injection)."""
    if not s.payloads:
        return None
    families = sorted(s.payloads)
    total = sum(s.payloads.values())
    requests = requests_of(s, *(f"payload:{f}" for f in families))
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
        {"hits": s.sensitive, "paths": paths, "requests": requests_of(s, "sensitive")},
    )


def rule_not_found_probe(s: IPStats, p: dict, c: Context) -> Hit | None:
    """Many distinct paths answered 4xx. Not a declared bot's (every request under a bot's name with a contact
    URL): a crawler follows links to pages that are gone, for years after a site moved (CrowdSec whitelists SEO
    bots the same way); what a scanner asks for is a probe family, judged by cms_probe whatever its agent. A bot
    claiming a listed crawler (Googlebot) from outside its networks gets no such benefit: fakes brute-force too."""
    if len(s.probe_paths) < p["min_distinct_paths"] or s.statuses.get("4xx", 0) < p["min_4xx_share"] * s.requests:
        return None
    if s.declared_bot == s.requests and not s.crawler_claims:  # a verified crawler is never judged at all
        return None
    paths = c.sample("probe_paths", s.probe_paths)
    return Hit(
        p["score"],
        f"4xx on {len(s.probe_paths)} distinct paths",
        {"distinct_4xx_paths": len(s.probe_paths), "paths": paths},
    )


def rule_bad_request(s: IPStats, p: dict, c: Context) -> Hit | None:
    if not s.bad_request:
        return None
    return Hit(
        p["score"],
        f"{s.bad_request} request(s) no browser sends (garbage, a proxy request or an unusual method)",
        {"requests": requests_of(s, "bad_request")},
    )
