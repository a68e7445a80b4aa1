"""Who sends the traffic: user agents, referrers and networks, as the internet shows them.

Browsers are drawn with their real version spread (a few versions behind the newest), bots mostly borrow those
same browser strings, and tools, monitors, feed readers and crawlers use their documented agents. Genuine crawlers
come from the networks their operators publish (written out here from those lists, independently of the
detector's own data files); everyone else from public address space outside them.
"""

from __future__ import annotations

import ipaddress
import random

_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{c}.0.0.0 Safari/537.36"
BROWSERS = [  # (template, weight): the share each family has on a typical site
    (_WIN, 30),
    (_WIN + " Edg/{c}.0.{b}.{p}", 8),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{c}.0.0.0 "
     "Safari/537.36", 9),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{s}.{m} "
     "Safari/605.1.15", 7),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{f}.0) Gecko/20100101 Firefox/{f}.0", 6),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:{f}.0) Gecko/20100101 Firefox/{f}.0", 2),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{c}.0.0.0 Safari/537.36", 2),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS {s}_{m} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/{s}.{m} Mobile/15E148 Safari/604.1", 18),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{c}.0.0.0 Mobile "
     "Safari/537.36", 16),
    ("Mozilla/5.0 (Linux; Android {a}; SM-S9{d}1B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/{g}.0 "
     "Chrome/{c}.0.0.0 Mobile Safari/537.36", 3),
    ("Mozilla/5.0 (iPad; CPU OS {s}_{m} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{s}.{m} "
     "Mobile/15E148 Safari/604.1", 2),
]  # fmt: skip
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/{c}.0.0.0 Safari/537.36"
)
# Long obsolete or impossible (no such OS/browser pair): what spam and probe kits carry in their lists.
OBSOLETE = [
    "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)",
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0; .NET CLR 2.0.50727)",
    "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0)",
    "Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.9.2.13) Gecko/20101203 Firefox/3.6.13",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/41.0.2228.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 5.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{o}.0.{b}.{p} Safari/537.36",
    "Opera/9.80 (Windows NT 6.1; U; en) Presto/2.10.289 Version/12.02",
    "Mozilla/5.0 (Windows 98; Win 9x 4.90) Gecko/20100101 Firefox/{o}.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 9_1 like Mac OS X; Windows NT 10.0) AppleWebKit/601.1.46 Version/9.0",
    "Mozilla/5.0 (Linux; Android 4.0.4; Galaxy Nexus Build/IMM76B) AppleWebKit/535.19 Chrome/18.0.1025.133",
]
TOOLS = ["python-requests/2.{r}.0", "Go-http-client/1.1", "Go-http-client/2.0", "curl/7.{k}.0", "curl/8.{q}.0",
         "Wget/1.21.{q}", "python-httpx/0.2{q}.0", "aiohttp/3.{r}.1", "Java/1.8.0_{j}", "libwww-perl/6.{r}",
         "Python-urllib/3.{r}", "okhttp/4.{q}.0", ""]  # fmt: skip
SCANNER_TOOLS = [
    "Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))",
    "Mozilla/5.0 zgrab/0.x", "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
    "sqlmap/1.{q}.{k}#stable (https://sqlmap.org)", "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000{q})",
    "WPScan v3.8.{r} (https://wpscan.com/wordpress-security-scanner)",
    "Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)",
    "Mozilla/5.0 (l9explore/1.2.2)", "fasthttp", "Mozilla/5.0 (compatible; Odin; https://docs.getodin.com/)",
]  # fmt: skip

# Published crawler networks (as operators list them: Google's googlebot.json, Bing's bingbot.json, Apple's and
# DuckDuckGo's lists), and the agents those crawlers send.
CRAWLERS = {
    "googlebot": (
        ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
         "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/{c}.0.0.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
         "Googlebot-Image/1.0"],
        ["66.249.64.0/27", "66.249.66.0/24", "66.249.68.0/24", "66.249.69.0/24", "66.249.70.0/24", "66.249.71.0/24",
         "66.249.72.0/24", "66.249.73.0/24", "66.249.74.0/24", "66.249.75.0/24", "66.249.76.0/24", "66.249.77.0/24",
         "66.249.79.0/24", "66.249.80.0/24", "66.249.81.0/24", "66.249.82.0/24", "66.249.83.0/24", "66.249.84.0/24",
         "66.249.89.0/24", "66.249.90.0/24", "66.249.91.0/24", "66.249.92.0/24", "2001:4860:4801:10::/64",
         "2001:4860:4801:2a::/64", "2001:4860:4801:4b::/64", "2001:4860:4801:60::/64"],
    ),
    "bingbot": (
        ["Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
         "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
         " Chrome/{c}.0.0.0 Safari/537.36"],
        ["157.55.39.0/24", "207.46.13.0/24", "40.77.167.0/24", "13.66.139.0/24", "13.66.144.0/24", "52.167.144.0/24",
         "40.77.188.0/22", "65.55.210.0/24", "199.30.24.0/23", "40.77.202.0/24", "40.77.177.0/24", "20.15.133.160/27",
         "51.105.67.0/28", "20.74.197.0/28", "40.79.131.208/28"],
    ),
    "applebot": (
        ["Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 "
         "Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)"],
        ["17.241.208.0/24", "17.241.219.0/24", "17.241.227.0/24", "17.22.237.0/24", "17.22.245.0/24",
         "17.58.98.0/24", "17.246.19.0/24"],
    ),
    "duckduckbot": (
        ["DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)"],
        ["20.191.45.212/32", "40.88.21.235/32", "40.76.173.151/32", "40.76.163.7/32", "20.185.79.47/32",
         "52.142.26.175/32", "20.185.79.15/32", "52.142.24.149/32", "40.76.162.208/32", "40.76.163.23/32"],
    ),
}  # fmt: skip
SEO_CRAWLERS = [
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot; help@moz.com)",
    "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
    "Mozilla/5.0 (Linux; Android 7.0;) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
    "(compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
]
MONITORS = [
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
    "Mozilla/5.0 (compatible; StatusCake)",
    "Better Uptime Bot Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/{c}.0 Safari/537.36",
    "updown.io daemon 2.{r}",
    "Site24x7",
    "curl/8.{q}.0",
    "",
]
FEED_READERS = [
    "Feedly/1.0 (+http://www.feedly.com/fetcher.html; {n} subscribers; like FeedFetcher-Google)",
    "Mozilla/5.0 (compatible; inoreader.com; {n} subscribers)",
    "NewsBlur Feed Fetcher - {n} subscribers - https://www.newsblur.com/site/{k}/ (Mozilla/5.0)",
    "Mozilla/5.0 (compatible; Miniflux/2.{r}.0; +https://miniflux.app)",
    "FreshRSS/1.2{q}.0 (Linux; https://freshrss.org)",
    "Tiny Tiny RSS/24.0{q} (https://tt-rss.org/)",
    "NetNewsWire (RSS Reader; https://netnewswire.com/)",
    "Mozilla/5.0 (compatible; theoldreader.com; {n} subscribers)",
]
SEARCH_REFERRERS = ["https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/",
                    "https://www.google.co.uk/", "https://search.yahoo.com/", "https://www.ecosia.org/"]  # fmt: skip
SOCIAL_REFERRERS = ["https://t.co/", "https://www.facebook.com/", "https://l.facebook.com/",
                    "https://www.reddit.com/", "https://news.ycombinator.com/", "https://www.linkedin.com/",
                    "android-app://com.slack/"]  # fmt: skip
SPAM_WORDS = ["seo", "buy", "cheap", "best", "free", "traffic", "casino", "loans", "pills", "replica", "crypto",
              "followers", "backlinks", "rank", "bonus", "deals", "vape", "essay"]  # fmt: skip
SPAM_TLDS = ["xyz", "top", "ru", "online", "site", "click", "info", "shop", "icu", "buzz", "com"]

HOSTING = [
    5,
    31,
    37,
    45,
    46,
    51,
    62,
    64,
    78,
    80,
    85,
    89,
    91,
    92,
    94,
    103,
    104,
    107,
    134,
    137,
    138,
    139,
    141,
    142,
    143,
    146,
    147,
    152,
    159,
    161,
    162,
    164,
    165,
    167,
    170,
    178,
    185,
    188,
    193,
    194,
    195,
    206,
    209,
    212,
    216,
]
RESIDENTIAL = [24, 31, 37, 41, 49, 58, 61, 67, 68, 70, 71, 73, 75, 76, 77, 79, 81, 82, 83, 84, 86, 87, 88, 90, 93,
               95, 96, 97, 98, 99, 101, 102, 105, 106, 108, 109, 110, 112, 113, 114, 115, 116, 117, 118, 119, 120,
               121, 122, 124, 125, 171, 173, 174, 175, 176, 177, 179, 180, 181, 182, 186, 187, 189, 190, 191, 196,
               197, 200, 201, 202, 210, 211, 218, 219, 220, 221, 222]  # fmt: skip
V6_PREFIXES = ["2a02", "2a01", "2600", "2601", "2603", "2003", "2409", "2405", "2806", "2a00", "2a0d", "2804"]
_PUBLISHED = [ipaddress.ip_network(n) for _, nets in CRAWLERS.values() for n in nets]


def _fill(rng: random.Random, template: str) -> str:
    if "{" not in template:
        return template
    c = rng.choice([126, 127, 128, 129, 129, 130, 130, 131, 131, 131])
    return template.format(
        c=c, b=rng.randint(2000, 6900), p=rng.randint(10, 200), f=rng.choice([115, 128, 131, 132, 133, 133]),
        s=rng.choice([16, 17, 17, 18, 18]), m=rng.randint(0, 6), a=rng.randint(11, 14), d=rng.randint(0, 2),
        g=rng.randint(23, 27), o=rng.randint(30, 60), r=rng.randint(18, 32), k=rng.randint(29, 88),
        q=rng.randint(1, 9), j=rng.randint(100, 400), n=rng.choice([1, 2, 3, 5, 8, 13, 40, 112]),
    )  # fmt: skip


def browser(rng: random.Random) -> str:
    templates, weights = zip(*BROWSERS, strict=True)
    return _fill(rng, rng.choices(templates, weights)[0])


def pick(rng: random.Random, templates: list[str]) -> str:
    return _fill(rng, rng.choice(templates))


def spam_domain(rng: random.Random) -> str:
    words = "-".join(rng.sample(SPAM_WORDS, rng.randint(1, 3)))
    return f"{words}{rng.choice(['', '-online', '-4u', str(rng.randint(1, 99))])}.{rng.choice(SPAM_TLDS)}"


def public_ipv4(rng: random.Random, firsts: list[int]) -> str:
    """A global IPv4 address outside every published crawler network."""
    while True:
        ip = f"{rng.choice(firsts)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        address = ipaddress.ip_address(ip)
        if address.is_global and not any(address in net for net in _PUBLISHED):
            return ip


def ipv6_network(rng: random.Random) -> str:
    """A random /64 (its prefix, ending in ``:``) of an access or hosting provider."""
    groups = [rng.randint(0x1000, 0xFFFF), rng.randint(0, 0xFFFF), rng.randint(0, 0xFFFF)]
    return f"{rng.choice(V6_PREFIXES)}:" + "".join(f"{g:x}:" for g in groups)


def ipv6_in(rng: random.Random, prefix: str) -> str:
    return str(ipaddress.ip_address(prefix + ":".join(f"{rng.randint(0, 0xFFFF):x}" for _ in range(4))))


def ipv6_sibling(rng: random.Random, ip: str) -> str:
    """Another address in ``ip``'s /64 (what IPv6 privacy extensions give the same device a day later)."""
    net = ipaddress.IPv6Network((ip, 64), strict=False)
    return str(net.network_address + rng.getrandbits(64))


def in_network(rng: random.Random, network: str) -> str:
    net = ipaddress.ip_network(network)
    if net.num_addresses == 1:
        return str(net.network_address)
    return str(net.network_address + rng.randint(1, min(net.num_addresses - 2, 1 << 32)))
