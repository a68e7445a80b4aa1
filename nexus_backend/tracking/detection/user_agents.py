"""User agents judged on their own: declared bots, obsolete browsers and strings no browser ever sent."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# Says it is a bot: the words crawlers use, or a contact URL in parentheses ("+http://…", "compatible; X/1.0; http").
_DECLARED_BOT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|fetch|monitor|feed|rss|reader|preview|archiver|\+https?://|@"
)
# Obsolete: a browser or system long out of use *when the request was made*: a log of 2014 is full of people on
# Windows XP and Internet Explorer 8, one of 2025 is not. Each pattern has the year from which it counts as long
# obsolete: about a decade after it stopped being current, or a few years after its maker's support ended for
# what people kept long (Windows XP). Impossible: what no browser ever sent, in any year.
_OBSOLETE_SINCE = [
    (re.compile(p), year)
    for p, year in (
        (r"msie [1-6]\.", 2016),  # Internet Explorer 6 and older: current until IE 7 (2006)
        (r"msie 7\.", 2019),
        (r"msie 8\.", 2021),
        (r"msie 9\.", 2022),
        (r"msie 10\.", 2023),  # IE 11 writes "Trident/7.0; rv:11.0", no "MSIE"
        (r"windows (?:95|98|me)\b|win(?:95|98|9x)\b", 2016),
        (r"windows ce\b", 2020),
        (r"windows nt [1-4]\.", 2014),
        (r"windows nt 5\.0", 2020),  # Windows 2000
        (r"windows nt 5\.[12]", 2024),  # XP (support ended 2014) and Server 2003: kept for years after
        (r"netscape", 2018),
        (r"safari/[1-4][0-9]{0,2}\.[0-9] ", 2017),  # Safari 1-2 (WebKit builds below 500)
        (r"mac os x 10[._][0-6][._ ;)]", 2021),  # up to Snow Leopard (current until 2011)
        (r"android [1-3]\.", 2022),
        (r"iphone os [1-6]_", 2023),
    )
]
_BROWSER_VERSION = re.compile(r"(firefox|chrome)/(\d+)\.")


def _release_year(browser: str, version: int) -> int:
    """About when Firefox or Chrome ``version`` came out (about eight a year since Firefox 5, 2011, and Chrome 4,
    2010)."""
    if browser == "firefox":
        return {1: 2004, 2: 2006, 3: 2008, 4: 2011}.get(version) or 2011 + (version - 5) // 8
    return 2008 if version <= 1 else 2009 if version <= 3 else 2010 + (version - 4) // 8


def obsolete_since(agent: str) -> int:
    """The year from which the browser or system ``agent`` names counts as long obsolete (0: never, or not a
    browser). The most obsolete part decides: Firefox 3 on Windows 7 is obsolete from Firefox 3's year on."""
    lower = agent.lower()
    if lower.startswith("opera/") and not _DECLARED_BOT.search(lower):
        # Opera before 15 (Presto, 2013) wrote "Opera/9.80 (...)"; Opera Mini's server-side mode still does
        return 0 if "opera mini" in lower else 2023
    if not lower.startswith("mozilla/") or _DECLARED_BOT.search(lower):
        return 0
    years = [year for regex, year in _OBSOLETE_SINCE if regex.search(lower)]
    for browser, version in _BROWSER_VERSION.findall(lower):
        if int(version) < 40:  # Firefox 40 and Chrome 40 came out in 2015
            years.append(_release_year(browser, int(version)) + 10)
    return min(years, default=0)


_PHONE = re.compile(r"iphone|ipad|android \d")
_MODERN = re.compile(r"chrome/(\d+)|firefox/(\d+)|edg/(\d+)")


def impossible_agent(agent: str) -> bool:
    """A user agent no browser sends, in any year (a forged or broken string)."""
    lower = agent.lower()
    if not lower.startswith("mozilla/"):
        return False
    if lower.strip() in ("mozilla/5.0", "mozilla/4.0", "mozilla/5.0 (compatible)") or (
        "msie " in lower and ("chrome/" in lower or "firefox/" in lower)
    ):
        return True
    if _PHONE.search(lower) and ("windows nt" in lower or "x11; linux x86_64" in lower or "macintosh" in lower):
        return True  # a phone and a desktop at once
    modern = _MODERN.search(lower)
    if not modern:
        return False
    version = int(next(g for g in modern.groups() if g))
    # Chrome 50+ and Firefox 53+ never ran on Windows XP / 9x; no browser has reached version 400
    return version > 400 or (
        version >= 50 and ("windows nt 5." in lower or "windows 98" in lower or "windows nt 4" in lower)
    )


def agent_oddity(agent: str, year: int | None = None) -> int:
    """0: a plausible user agent in ``year`` (default: this year); 1: an obsolete browser then; 2: one no browser
    sends (a forged or broken string)."""
    if impossible_agent(agent):
        return 2
    since = obsolete_since(agent)
    return 1 if since and (year or datetime.now(UTC).year) >= since else 0
