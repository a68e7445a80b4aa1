"""User agents judged on their own: declared bots, obsolete browsers and strings no browser ever sent."""

from __future__ import annotations

import re

# Says it is a bot: the words crawlers use, or a contact URL in parentheses ("+http://…", "compatible; X/1.0; http").
_DECLARED_BOT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|fetch|monitor|feed|rss|reader|preview|archiver|\+https?://|@"
)
# Obsolete: browsers no one has run for about a decade. Impossible: what no browser ever sent.
_OBSOLETE = re.compile(
    r"msie [1-9]\.|msie 10\.|windows (95|98|me|ce)\b|win(95|98|9x)\b|windows nt [1-4]\.|windows nt 5\.[0-2]"
    r"|firefox/([1-9]|[1-3][0-9])\.|chrome/([1-9]|[1-3][0-9])\.|opera/[1-9]\.|netscape|safari/[1-4][0-9]{0,2}\.[0-9] "
    r"|mac os x 10[._][0-6][._ ;)]|android [1-3]\.|iphone os [1-6]_"
)
_PHONE = re.compile(r"iphone|ipad|android \d")
_MODERN = re.compile(r"chrome/(\d+)|firefox/(\d+)|edg/(\d+)")


def agent_oddity(agent: str) -> int:
    """0: a plausible user agent; 1: an obsolete browser; 2: one no browser sends (a forged or broken string)."""
    lower = agent.lower()
    if lower.startswith("opera/") and not _DECLARED_BOT.search(lower):
        return 1  # Opera before 15 (Presto, 2013) wrote "Opera/9.80 (...)"
    if not lower.startswith("mozilla/"):
        return 0  # a tool or a bot names itself: nothing to judge here
    if lower.strip() in ("mozilla/5.0", "mozilla/4.0", "mozilla/5.0 (compatible)") or (
        "msie " in lower and ("chrome/" in lower or "firefox/" in lower)
    ):
        return 2
    if _PHONE.search(lower) and ("windows nt" in lower or "x11; linux x86_64" in lower or "macintosh" in lower):
        return 2  # a phone and a desktop at once
    modern = _MODERN.search(lower)
    if modern and ("windows nt 5." in lower or "windows 98" in lower or "windows nt 4" in lower):
        version = int(next(g for g in modern.groups() if g))
        if version >= 50:
            return 2  # Chrome 50+ and Firefox 53+ never ran on Windows XP / 9x
    if modern and int(next(g for g in modern.groups() if g)) > 400:
        return 2
    if _DECLARED_BOT.search(lower):
        return 0  # an old "compatible; MSIE" string in a crawler's agent is its own business
    return 1 if _OBSOLETE.search(lower) else 0
