"""Spam: referrer spam, form and comment spam, trackback/pingback/comment signatures."""

from __future__ import annotations

from ..aggregate import SAMPLE, IPStats
from .base import Context, Hit, requests_of


def rule_referrer_spam(s: IPStats, p: dict, c: Context) -> Hit | None:
    if not s.offsite:
        return None
    counted = c.scratch.get("referrer_spam")  # host -> counted as off-site (not the site's own, not benign)
    if counted is None:
        counted = c.scratch["referrer_spam"] = {}
    offsite = {}
    for host, n in s.offsite.items():
        keep = counted.get(host)
        if keep is None:
            keep = counted[host] = host not in c.site.own_hosts and not c.compiled["benign_hosts"].search(host)
        if keep:
            offsite[host] = n
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
    logins, limit = c.login_paths, p["max_seconds"]
    # A form loaded just before the window began and posted just after it (12:59:57, 13:00:05): its GET is in the
    # window before, when the aggregates cover that one (a replayed log); the hourly task sees one window only.
    start = c.key[0]
    early = {path for path, posted in s.posts.items() if posted - start < p["boundary_seconds"]}
    covered = bool(early) and start - c.derived.window in c.derived.windows()
    before = c.derived.stats.get((start - c.derived.window, c.key[1])) if covered else None
    gets = s.gets
    if before is not None and before.gets:
        gets = {path: got for path, got in before.gets.items() if path in early} | s.gets
    fast = sorted(
        path
        for path, posted in s.posts.items()
        if (path not in gets or posted - gets[path] < limit)
        and (s.auth_failures or not logins(path))  # a blind login that succeeded guessed nothing
    )
    if not fast:
        return None
    # A comment form posts to another URL than the page that shows it: a POST seconds after loading any page of
    # this window is at machine speed too (nobody reads a post and writes a comment in 3 s).
    quick = {path for path in fast if any(0 <= s.posts[path] - got < limit for got in s.gets.values())}
    blind = [path for path in fast if path not in gets and path not in quick]
    how = "without loading the form" if blind else f"within {limit} s of loading a page"
    tool = s.requests > s.browser + s.absent_agent
    # A reader who loaded the page in an earlier window (its assets cached) posts without a GET here, but from a
    # page of this site: a blind POST whose every referrer is this site is only medium evidence. Not for a login
    # form POSTed blind (people submit those right after loading them, and brute-force tools send the form as
    # referrer), unless it came within boundary_seconds of the window's start, the window before is not there to
    # tell, and the client went on reading (a person logged in; a one-shot guess is only the POST). A login whose
    # form was loaded (a reader signs in, then comments on a page a comment URL is not) does not count against it.
    referred = "" not in s.post_ref_hosts and s.post_ref_hosts <= c.site.own_hosts
    unknown = not covered and bool(s.gets) and all(path in early for path in blind)
    blind_login = any(logins(path) for path in blind)
    from_site = bool(blind) and len(blind) == len(fast) and referred and (not blind_login or unknown)
    return Hit(
        p["tool_score"] if tool or from_site else p["score"],
        f"form POSTs {how}, no page asset loaded ({', '.join(fast[:3])})"
        + (" by a tool" if tool else "")
        + (" (referred by this site)" if from_site else ""),
        {"forms": fast[:SAMPLE], "requests": requests_of(s, "form_post")},
    )


def rule_spam_signature(s: IPStats, p: dict, c: Context) -> Hit | None:
    if not s.spam_signature or (c.site.has_assets and s.static):
        return None
    return Hit(
        p["score"],
        f"{s.spam_signature} trackback/pingback/comment POST(s) from a client that loaded no page",
        {"requests": requests_of(s, "spam_signature")},
    )
