"""Benign populations, the hard ones included: loud, shared, automated and crawling traffic that is not an attack.

Each function writes the requests of ``n`` members of one population into a ``Builder``; counts, pauses, agents
and paths are drawn per member, so no population is a constant."""

from __future__ import annotations

from urllib.parse import quote_plus

from nexus_lab.traffic import agents
from nexus_lab.traffic.core import HOUR, Builder
from nexus_lab.traffic.sites import Site


def _entry_referrer(b: Builder) -> str:
    r = b.rng.random()
    if r < 0.4:
        return b.rng.choice(agents.SEARCH_REFERRERS)
    if r < 0.55:
        return b.rng.choice(agents.SOCIAL_REFERRERS)
    return "" if r < 0.92 else f"https://{b.rng.choice(['lobste.rs', 'dev.to', 'medium.com', 'forum.example.net'])}/"


def visit(b: Builder, site: Site, ip: str, agent: str, t: float, *, referrer: str = "", page: str = "",
          pages: int = 0, login: float = 0.15, act: float = 0.3, cached: bool = False,
          new_account: float = 0.1) -> float:  # fmt: skip
    """A person reading: pages with their assets and API calls, sometimes a login (with typos), a vote or a
    comment. Returns the time the visit ends."""
    rng = b.rng
    pages = pages or b.count(3.5, spread=0.9, high=60)
    first = not cached
    logged_in = False
    for i in range(pages):
        page = page if i == 0 and page else site.page(rng)
        if rng.random() < 0.02:
            page = rng.choice(site.stale)
        found = page not in site.stale
        b.add(t, ip, "GET", page, 200 if found else 404, agent, referrer)
        url = site.url(page)
        if found:
            t0 = t
            for asset in (site.assets if first else []) + site.images.get(page, []):
                if rng.random() < 0.93:
                    t0 += rng.uniform(0.02, 0.6)
                    b.add(t0, ip, "GET", asset, 200, agent, url)
            first = False
            for method, path, status in site.xhr(page, rng):
                t0 += rng.uniform(0.1, 1.2)
                b.add(t0, ip, method, path, status, agent, url)
            if site.polls and page != "/" and rng.random() < 0.25:  # watches the results update
                for _ in range(b.count(5, high=80)):
                    t0 += rng.uniform(4, 12)
                    b.add(t0, ip, "GET", f"/api/polls/{page.rsplit('/', 1)[-1]}/results/", 200, agent, url)
            if rng.random() < act:
                t0 += b.think(20)
                if not logged_in and rng.random() < login / max(act, 1e-9):
                    t0 = sign_in(b, site, ip, agent, t0, url, new=rng.random() < new_account)
                    logged_in = True
                if site.polls and page != "/" and logged_in:
                    pid = page.rsplit("/", 1)[-1]
                    t0 += rng.uniform(2, 20)
                    b.add(t0, ip, "POST", f"/api/polls/{pid}/vote/", rng.choice([201] * 8 + [409]), agent, url)
                elif page in site.comment_posts and rng.random() < 0.15:
                    t0 += b.think(120)  # reads, then writes a comment
                    b.add(t0, ip, "POST", site.comment_posts[page], 302, agent, url)
            t = t0
        referrer = url
        t += b.think(25)
    return t


def sign_in(b: Builder, site: Site, ip: str, agent: str, t: float, referrer: str, *, new: bool = False) -> float:
    """Logs in (after creating the account when ``new``, on the poll site), with an occasional typo first."""
    rng = b.rng
    if new and site.polls:
        t += b.think(40)
        b.add(t, ip, "POST", "/api/auth/register/", rng.choice([201] * 9 + [400]), agent, referrer)
    if site.login_page:
        t += rng.uniform(1, 5)
        b.add(t, ip, "GET", site.login_page, 200, agent, referrer)
        referrer = site.url(site.login_page)
    for _ in range(rng.choices([0, 1, 2], [86, 11, 3])[0]):  # typos
        t += rng.uniform(5, 25)
        b.add(t, ip, "POST", site.login_post, site.login_failed, agent, referrer)
    t += rng.uniform(4, 20)
    b.add(t, ip, "POST", site.login_post, site.login_ok, agent, referrer)
    return t


SEARCHES = ["o'brien's pub", "select a union rep", '"best pizza" or pasta', "don't or won't", "it's 5 o'clock",
            "rock & roll", "1+1=2", "learn javascript: the good parts", "sleep apnea (adults)", "cd player; rm 50",
            "Tom & Jerry; season 1", "a < b and c > d", "<3 love", "C:\\Users", "drop shipping; update 2024",
            "https://example.com/a?b=1", "where's the ../ folder", "what is /etc/hosts"]  # fmt: skip


def humans(b: Builder, site: Site, n: int) -> None:
    rng = b.rng
    returning: list[tuple[str, str]] = []
    for _ in range(n):
        if returning and rng.random() < 0.25:
            ip, agent = rng.choice(returning)
            cached = True
            if ":" in ip and rng.random() < 0.7:  # back a day later on a new privacy address of the same /64
                ip = b.claim(agents.ipv6_sibling(rng, ip), "humans") or ip
        else:
            ip, agent, cached = b.ip("humans", hosting=False, v6=0.25), agents.browser(rng), False
            returning.append((ip, agent))
        login = 0.15 if site.polls else 0.02  # a poll app asks for an account; a blog rarely does
        t = b.when()
        visit(b, site, ip, agent, t, referrer=_entry_referrer(b), cached=cached, login=login)
        if rng.random() < 0.05:  # a search with quotes, SQL or shell words: no payload (payloads.py)
            where = "/api/polls/?search=" if site.polls else "/search/?q="
            query = quote_plus(rng.choice(SEARCHES), safe="")
            b.add(t + rng.uniform(20, 120), ip, "GET", where + query, 200, agent, site.origin + "/")


def viral_poll(b: Builder, site: Site, n: int) -> None:
    """A link shared on social media: ``n`` readers, mostly on phones, arrive in a decaying wave."""
    rng = b.rng
    page = rng.choice(site.pages[1:20])
    t0 = b.when()
    source = rng.choice(agents.SOCIAL_REFERRERS)
    for _ in range(n):
        ip = b.ip("viral_poll", hosting=False, v6=0.4)
        visit(b, site, ip, agents.browser(rng), t0 + rng.expovariate(1 / (2 * HOUR)), referrer=source, page=page,
              pages=b.count(1.6, high=8), login=0.5 if site.polls else 0.02, act=0.6, new_account=0.7)  # fmt: skip


def campus_nat(b: Builder, site: Site, n: int) -> None:
    """One address in front of a whole campus: many people and browsers, typos, a few stale links."""
    rng = b.rng
    for _ in range(max(1, n // 60)):
        ip = b.ip("campus_nat", hosting=False)
        for _ in range(b.count(60, spread=0.4)):
            visit(b, site, ip, agents.browser(rng), b.when(), referrer=_entry_referrer(b), login=0.3, act=0.5)


def carrier_nat(b: Builder, site: Site, n: int) -> None:
    """A mobile app behind carrier-grade NAT: a few addresses, one user agent, no referrer, no assets."""
    rng = b.rng
    agent = f"NexusPolls/3.{rng.randint(2, 9)}.{rng.randint(0, 4)} (Android; okhttp/4.12.0)" if site.polls else (
        f"Mozilla/5.0 (Linux; Android 14) ReaderApp/2.{rng.randint(1, 9)} (okhttp)")  # fmt: skip
    ips = [b.ip("carrier_nat", hosting=False) for _ in range(max(1, n // 100))]
    for _ in range(n):
        ip = rng.choice(ips)
        t = b.when()
        if rng.random() < 0.3:
            b.add(t, ip, "POST", "/api/auth/token/refresh/" if site.polls else site.login_post, site.login_ok, agent)
        for _ in range(b.count(6, high=50)):
            t += b.think(8)
            path = rng.choice(site.api).replace("{pid}", str(rng.randint(1, max(1, site.polls))))
            b.add(t, ip, "GET", path, 200 if rng.random() > 0.04 else 401, agent)
            if site.polls and rng.random() < 0.15:
                b.add(t + rng.uniform(1, 6), ip, "POST", f"/api/polls/{rng.randint(1, site.polls)}/vote/", 201, agent)
        if rng.random() < 0.2:  # the same people also browse in the phone's browser
            visit(b, site, ip, agents.browser(rng), t, referrer=rng.choice(agents.SOCIAL_REFERRERS))


def developer(b: Builder, site: Site, n: int) -> None:
    """People building against the site: thousands of requests a day, tools and browsers, errors and bad logins."""
    rng = b.rng
    for _ in range(n):
        ip = b.ip("developer", hosting=False, v6=0.2)
        tools = [agents.browser(rng), f"PostmanRuntime/7.3{rng.randint(2, 9)}.0",
                 agents.pick(rng, ["curl/8.{q}.0", "python-requests/2.{r}.0", "HTTPie/3.2.{q}"])]  # fmt: skip
        posts = (["/api/polls/", "/api/polls/{pid}/vote/", "/graphql/"] if site.polls
                 else [site.contact, *list(site.comment_posts.values())[:3]])  # fmt: skip
        for _ in range(b.count(3, high=8)):  # working sessions
            t = b.when()
            for _ in range(b.count(800, spread=0.6, high=5000)):
                t += rng.expovariate(1 / 4)
                post = rng.random() < 0.15  # to what accepts a POST: the API, or the site's forms
                path = rng.choice(posts if post else site.api + site.pages[:3])
                path = path.replace("{pid}", str(rng.randint(1, max(1, site.polls))))
                status = rng.choices([201 if post and site.polls else 200, 404, 400, 500, 401], [85, 5, 5, 2, 3])[0]
                b.add(t, ip, "POST" if post else "GET", path, status, rng.choice(tools),
                      "http://localhost:5173/" if rng.random() < 0.6 else "")  # fmt: skip
                if rng.random() < 0.01:
                    b.add(t + 1, ip, "POST", site.login_post, rng.choice([site.login_failed, site.login_ok]), tools[0])


def site_owner(b: Builder, site: Site, n: int) -> None:
    """Whoever runs the site: the admin (or the login form) daily, a mistyped password now and then."""
    rng = b.rng
    for _ in range(n):
        ip = b.ip("site_owner", hosting=False)
        agent = agents.browser(rng)
        for day in range(max(1, b.hours // 24)):
            t = b.start + day * 86400 + rng.uniform(7, 22) * HOUR
            if site.admin:
                b.add(t, ip, "GET", site.admin, 302, agent, "")
                b.add(t + 0.3, ip, "GET", site.admin + "login/", 200, agent, "")
                for _ in range(rng.choices([0, 1, 2], [80, 15, 5])[0]):
                    t += rng.uniform(5, 20)
                    b.add(t, ip, "POST", site.admin + "login/", 200, agent, site.url(site.admin + "login/"))
                b.add(t + 8, ip, "POST", site.admin + "login/", 302, agent, site.url(site.admin + "login/"))
                for k in range(b.count(12, high=120)):
                    page = rng.choice(["", "polls/poll/", f"polls/poll/{rng.randint(1, 300)}/change/", "auth/user/"])
                    b.add(t + 10 + 20 * k, ip, "GET", site.admin + page, 200, agent, site.url(site.admin))
            else:
                t = sign_in(b, site, ip, agent, t, site.url("/"))
                visit(b, site, ip, agent, t, referrer=site.url(site.login_page), pages=b.count(8), cached=True)


def uptime_monitors(b: Builder, site: Site, n: int) -> None:
    rng = b.rng
    for _ in range(n):
        agent = agents.pick(rng, agents.MONITORS)
        ips = [b.ip("uptime_monitors", hosting=True) for _ in range(rng.choice([1, 1, 2, 4]))]
        every = rng.choice([30, 60, 60, 120, 300, 300, 600])
        path, method = rng.choice(["/", "/health/" if site.polls else site.pages[1]]), rng.choice(["GET", "HEAD"])
        t = b.start + rng.uniform(0, every)
        while t < b.end:
            b.add(t, rng.choice(ips), method, path, 200 if rng.random() > 0.002 else 503, agent)
            t += every + rng.uniform(-2, 2)


def feed_readers(b: Builder, site: Site, n: int) -> None:
    rng = b.rng
    if not site.feed:
        return
    for _ in range(n):
        agent = agents.pick(rng, agents.FEED_READERS)
        ip = b.ip("feed_readers", hosting=True, v6=0.15)
        every = rng.choice([900, 1800, 3600, 3600, 7200, 10800])
        t = b.start + rng.uniform(0, every)
        while t < b.end:
            b.add(t, ip, "GET", site.feed, rng.choice([200, 304, 304, 304]), agent)
            t += every * rng.uniform(0.8, 1.2)


def partner_api(b: Builder, site: Site, n: int) -> None:
    """Another service polling the public results with a plain HTTP library (no referrer, no browser)."""
    rng = b.rng
    for _ in range(n):
        ip = b.ip("partner_api", hosting=True)
        agent = agents.pick(rng, ["python-requests/2.{r}.0", "Go-http-client/1.1", "axios/1.6.{q}"])
        pids = [rng.randint(1, max(1, site.polls)) for _ in range(rng.randint(1, 4))]
        every = rng.choice([30, 60, 120, 300])
        t = b.when()
        for _ in range(b.count(8 * HOUR / every, high=3000)):
            path = f"/api/polls/{rng.choice(pids)}/results/" if site.polls else (site.feed or "/")
            b.add(t, ip, "GET", path, 200, agent)
            t += every


def crawl(b: Builder, site: Site, ip: str, agent: str, pages: int, t: float, *, robots: float = 0.9) -> None:
    """A crawler's visit: robots.txt first (usually), then pages and images at its own pace, a few stale links."""
    rng = b.rng
    if rng.random() < robots:
        b.add(t, ip, "GET", "/robots.txt", 200, agent)
    if rng.random() < 0.3:
        b.add(t + 1, ip, "GET", "/sitemap.xml", 200 if not site.polls else 404, agent)
    pace = rng.choice([2, 5, 15, 40])
    for _ in range(pages):
        t += rng.expovariate(1 / pace)
        page = site.page(rng) if rng.random() < 0.5 else rng.choice(site.pages)
        if rng.random() < 0.05:
            b.add(t, ip, "GET", rng.choice(site.stale), 404, agent)
        elif site.images.get(page) and rng.random() < 0.15:
            b.add(t, ip, "GET", rng.choice(site.images[page]), 200, agent)
        else:
            b.add(t, ip, "GET", page, 200 if rng.random() > 0.1 else 304, agent)
            for method, path, status in site.xhr(page, rng) if rng.random() < 0.3 else []:
                b.add(t + 1, ip, method, path, status, agent)


def crawlers(b: Builder, site: Site, n: int) -> None:
    """Genuine search-engine crawlers from across their published networks (not one favourite /24)."""
    rng = b.rng
    names = list(agents.CRAWLERS)
    for _ in range(n):
        name = rng.choices(names, [6, 3, 1, 1])[0]
        templates, networks = agents.CRAWLERS[name]
        ip = b.ip_in("crawlers", rng.choice(networks))
        for _ in range(b.count(4, high=30)):
            crawl(b, site, ip, agents.pick(rng, templates), b.count(30, spread=1.0, high=1500), b.when(diurnal=False))


def seo_crawlers(b: Builder, site: Site, n: int) -> None:
    rng = b.rng
    for _ in range(n):
        ip = b.ip("seo_crawlers", hosting=True)
        crawl(b, site, ip, agents.pick(rng, agents.SEO_CRAWLERS), b.count(60, spread=1.0, high=2000), b.when())
