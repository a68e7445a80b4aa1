"""Volume and walking: scrapers and page walks, the curriculum's volume rule, one action shared by many addresses."""

from __future__ import annotations

import statistics

from ..aggregate import IPStats
from .base import Context, Hit


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


def rule_machine_pace(s: IPStats, p: dict, c: Context) -> Hit | None:
    """A scripted browser walking the site: many distinct pages (not API calls) first loaded at a steady, short
    interval. It may load the assets and follow links like a reader, but people read: the pause before the next
    page is seconds to minutes and varies a lot (a coefficient of variation about 1 or more), and several people
    behind one NAT interleave like a random process (about 1). A script waits a delay with a little jitter (Scrapy's
    RANDOMIZE_DOWNLOAD_DELAY: 0.5-1.5x, a variation near 0.3) or as long as each page takes to load."""
    if len(s.gets) < p["min_pages"] or len(s.agents) > p["max_user_agents"] or s.declared_bot:
        return None
    api = c.compiled["api"].search
    times = sorted(t for path, t in s.gets.items() if not api(path))
    if len(times) < p["min_pages"]:
        return None
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    median, mean = statistics.median(gaps), statistics.fmean(gaps)
    variation = statistics.pstdev(gaps) / mean if mean else 0.0
    if median > p["max_median_gap"] or variation > p["max_gap_variation"]:
        return None
    return Hit(
        p["score"],
        f"{len(times)} pages, a new one every {median:g} s (variation {variation:.2f}): a machine's pace",
        {
            "pages": len(times),
            "median_gap": median,
            "gap_variation": round(variation, 3),
            "paths": c.sample("pages", s.pages),
        },
    )
