"""A seeded generator of labelled poll-API traffic: combined-format logs plus a ground-truth CSV (ip,label,population).

Benign populations: ordinary ``users``, a ``campus_nat`` (a whole campus behind one address), a ``frontend_dev``
hammering their own endpoints, real ``crawlers`` from their own networks, ``monitoring`` pings (one without a user
agent). Attacks: ``credential_stuffing`` on the token endpoint (fast and slow), ``vote_stuffing`` from rotating
addresses, ``scanners`` probing CMS and dotfile paths, ``scrapers`` walking every page, ``fake_crawlers``,
low-and-slow distributed ``signup_spam``. Same seed, same files: ``manage.py gen_traffic`` writes them; a small
sample is committed in ``data/``.
"""

from __future__ import annotations

import csv
import gzip
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .detection.parsers import Record, format_combined

DEFAULT_START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SITE = "https://polls.example.com"
BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{m} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{m} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-A{v}5F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
    "Mobile Safari/537.36",
]
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
PROBES = [
    "/wp-login.php", "/wp-admin/", "/wp-admin/setup-config.php", "/xmlrpc.php", "/.env", "/.git/config",
    "/.git/HEAD", "/phpmyadmin/", "/pma/", "/admin.php", "/config.php", "/backup.sql", "/db.sql", "/.aws/credentials",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/cgi-bin/luci", "/actuator/env", "/solr/admin/info",
    "/.DS_Store", "/wp-content/plugins/", "/index.php", "/shell.php", "/.htaccess", "/server-status", "/HNAP1/",
    "/boaform/admin/formLogin", "/admin/", "/login", "/administrator/", "/console/", "/.svn/entries", "/api/.env",
]  # fmt: skip
SCANNER_AGENTS = [
    "Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))",
    "Mozilla/5.0 zgrab/0.x",
    "sqlmap/1.7.2#stable (https://sqlmap.org)",
]
BENIGN = ("users", "campus_nat", "frontend_dev", "crawlers", "monitoring")
ATTACKS = ("credential_stuffing", "vote_stuffing", "scanners", "scrapers", "fake_crawlers", "signup_spam")
POPULATIONS = BENIGN + ATTACKS


@dataclass
class Traffic:
    records: list[Record]
    labels: dict[str, tuple[str, str]]  # ip -> (label, population)
    counts: dict[str, int] = field(default_factory=dict)  # population -> requests


class _Gen:
    def __init__(self, seed: int, start: float, polls: int) -> None:
        self.rng = random.Random(seed)
        self.start = start
        self.polls = polls
        self.records: list[Record] = []
        self.labels: dict[str, tuple[str, str]] = {}
        self.counts: dict[str, int] = {}
        self.used: set[str] = set()

    # ----------------------------------------------------------------- helpers

    def ip(self, population: str, *, network: str | None = None) -> str:
        rng = self.rng
        while True:
            if network:
                a, b, c = network.split(".")[:3]
                ip = f"{a}.{b}.{c}.{rng.randint(1, 254)}"
            else:
                first = rng.choice([23, 31, 41, 45, 62, 77, 81, 85, 91, 102, 105, 154, 176, 185, 196, 197, 212])
                ip = f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            if ip not in self.used:
                self.used.add(ip)
                self.labels[ip] = ("benign" if population in BENIGN else "attack", population)
                return ip

    def browser(self) -> str:
        rng = self.rng
        return rng.choice(BROWSERS).format(v=rng.randint(118, 131), m=rng.randint(0, 6))

    def add(self, population, ts, ip, method, path, status, agent="", referrer="") -> None:
        self.records.append(Record(float(int(ts)), ip, method, path, status, agent, referrer))
        self.counts[population] = self.counts.get(population, 0) + 1

    def poll(self) -> int:
        return self.rng.randint(1, self.polls)

    # ----------------------------------------------------------------- benign

    def session(self, population: str, ip: str, t0: float, agent: str, referrer_site: str = SITE) -> None:
        """A person: lists polls, opens some, maybe logs in and votes, reads results."""
        rng = self.rng
        t = t0
        self.add(population, t, ip, "GET", "/api/polls/", 200, agent, f"{referrer_site}/")
        if rng.random() < 0.1:
            t += rng.uniform(5, 40)
            self.add(population, t, ip, "POST", "/api/auth/register/", 201, agent, f"{referrer_site}/signup")
        if rng.random() < 0.6:
            t += rng.uniform(3, 30)
            if rng.random() < 0.08:  # a typo first
                self.add(population, t, ip, "POST", "/api/auth/token/", 401, agent, f"{referrer_site}/login")
                t += rng.uniform(3, 15)
            self.add(population, t, ip, "POST", "/api/auth/token/", 200, agent, f"{referrer_site}/login")
        for _ in range(rng.randint(1, 6)):
            t += rng.uniform(2, 90)
            pid = self.poll()
            page = f"{referrer_site}/polls/{pid}"
            status = 200 if rng.random() > 0.03 else 404
            self.add(population, t, ip, "GET", f"/api/polls/{pid}/", status, agent, page)
            if status == 200 and rng.random() < 0.5:
                t += rng.uniform(2, 30)
                self.add(
                    population, t, ip, "POST", f"/api/polls/{pid}/vote/", rng.choice([201] * 9 + [409]), agent, page
                )
            t += rng.uniform(1, 10)
            self.add(population, t, ip, "GET", f"/api/polls/{pid}/results/", 200, agent, page)
        if rng.random() < 0.3:
            t += rng.uniform(5, 60)
            self.add(population, t, ip, "GET", "/api/polls/", 200, agent, f"{referrer_site}/?page=2")

    def users(self, n: int, hour0: float) -> None:
        for _ in range(n):
            self.session("users", self.ip("users"), hour0 + self.rng.uniform(0, 3300), self.browser())

    def campus(self, ip: str, people: int, hour0: float) -> None:
        for _ in range(people):
            self.session("campus_nat", ip, hour0 + self.rng.uniform(0, 3300), self.browser())

    def frontend_dev(self, ip: str, n: int, hour0: float) -> None:
        rng = self.rng
        agent = BROWSERS[0].format(v=130, m=0)
        paths = ["/api/polls/", "/api/polls/1/", "/api/polls/1/results/", "/api/auth/token/refresh/"]
        for _ in range(n):
            t = hour0 + rng.uniform(0, 3599)
            path = rng.choice(paths)
            if path.endswith("refresh/"):
                self.add("frontend_dev", t, ip, "POST", path, 200, agent, "http://localhost:5173/")
            elif rng.random() < 0.05:
                self.add("frontend_dev", t, ip, "POST", "/api/polls/", 400, agent, "http://localhost:5173/new")
            else:
                self.add("frontend_dev", t, ip, "GET", path, 200, agent, "http://localhost:5173/")

    def crawl(self, population: str, ip: str, agent: str, pages: int, hour0: float) -> None:
        rng = self.rng
        self.add(population, hour0 + rng.uniform(0, 60), ip, "GET", "/robots.txt", 200, agent)
        for _ in range(pages):
            pid = self.poll()
            path = rng.choice([f"/api/polls/{pid}/", f"/api/polls/{pid}/results/", "/api/polls/"])
            self.add(population, hour0 + rng.uniform(0, 3599), ip, "GET", path, 200, agent)

    def scrape(self, ip: str, agent: str, pages: int, hour0: float) -> None:
        """Walks every poll in order: the list pages, each poll, each poll's results."""
        t = hour0 + self.rng.uniform(0, 600)
        step = 2400 / max(1, pages)
        paths = [p for pid in range(1, self.polls + 1) for p in (f"/api/polls/{pid}/", f"/api/polls/{pid}/results/")]
        for path in paths[:pages]:
            t += self.rng.uniform(0.2, 2 * step)
            self.add("scrapers", t, ip, "GET", path, 200, agent)

    def monitoring(self, ip: str, agent: str, every: int, hour0: float) -> None:
        for k in range(3600 // every):
            self.add("monitoring", hour0 + k * every, ip, "GET", "/health/", 200, agent)

    # ----------------------------------------------------------------- attacks

    def credential_stuffing(self, ip: str, attempts: int, hour0: float) -> None:
        rng = self.rng
        agent = rng.choice(["python-requests/2.31.0", self.browser()])
        for _ in range(attempts):
            status = rng.choice([401] * 30 + [429] * 3 + [200])
            self.add("credential_stuffing", hour0 + rng.uniform(0, 3599), ip, "POST", "/api/auth/token/", status, agent)

    def vote_stuffing(self, n: int, hour0: float, agent: str, target: int) -> None:
        rng = self.rng
        for _ in range(n):
            ip = self.ip("vote_stuffing")
            t = hour0 + rng.uniform(0, 3500)
            self.add("vote_stuffing", t, ip, "POST", "/api/auth/token/", 200, agent)
            for _ in range(rng.choice([1, 1, 1, 2])):
                t += rng.uniform(0.5, 20)
                status = 201 if rng.random() < 0.8 else 409
                self.add("vote_stuffing", t, ip, "POST", f"/api/polls/{target}/vote/", status, agent)

    def scanner(self, ip: str, probes: int, hour0: float) -> None:
        rng = self.rng
        agent = rng.choice([*SCANNER_AGENTS, self.browser(), ""])
        t = hour0 + rng.uniform(0, 3000)
        first = rng.choice(["/.env", "/wp-login.php", "/.git/config"])  # what every scanner tries
        for path in [first, *rng.sample([p for p in PROBES if p != first], min(probes, len(PROBES)) - 1)]:
            t += rng.uniform(0.05, 20)
            status = 302 if path in ("/admin/", "/administrator/") else 404
            self.add("scanners", t, ip, rng.choice(["GET", "GET", "HEAD", "POST"]), path, status, agent)

    def signup_spam(self, n: int, hour0: float, agent: str) -> None:
        rng = self.rng
        for _ in range(n):
            ip = self.ip("signup_spam")
            t = hour0 + rng.uniform(0, 3590)
            for _ in range(rng.choice([1, 1, 2])):
                self.add("signup_spam", t, ip, "POST", "/api/auth/register/", rng.choice([201, 201, 400]), agent)
                t += rng.uniform(1, 8)


def generate(*, seed: int = 7, hours: int = 1, scale: float = 1.0, start: datetime = DEFAULT_START) -> Traffic:
    """Labelled traffic for ``hours`` hours; ``scale`` multiplies the sizes of the crowds (not the attacks' count)."""
    g = _Gen(seed, start.timestamp(), polls=max(50, int(400 * scale)))
    rng = g.rng
    s = scale
    # The long-lived addresses, the same every hour.
    campus = g.ip("campus_nat")
    dev = g.ip("frontend_dev")
    google = [g.ip("crawlers", network="66.249.66.0") for _ in range(2)]
    bing = g.ip("crawlers", network="157.55.39.0")
    monitors = [(g.ip("monitoring"), "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", 60),
                (g.ip("monitoring"), "", 30)]  # fmt: skip
    stuffers = [(g.ip("credential_stuffing"), a) for a in (300, 120, 12)]
    scanners = [(g.ip("scanners"), p) for p in (30, 12, 6, 3)]
    scrapers = [(g.ip("scrapers"), rng.choice(["python-requests/2.31.0", "Scrapy/2.11.0 (+https://scrapy.org)"]))
                for _ in range(2)]  # fmt: skip
    fakes = [g.ip("fake_crawlers") for _ in range(2)]
    vote_agent = g.browser()
    spam_agent = g.browser()
    for h in range(hours):
        hour0 = g.start + 3600 * h
        g.users(int(120 * s), hour0)
        g.campus(campus, int(60 * s), hour0)
        g.frontend_dev(dev, int(1500 * s), hour0)
        for ip in google:
            g.crawl("crawlers", ip, GOOGLEBOT, int(250 * s), hour0)
        g.crawl("crawlers", bing, BINGBOT, int(180 * s), hour0)
        for ip, agent, every in monitors:
            g.monitoring(ip, agent, every, hour0)
        for ip, attempts in stuffers:
            g.credential_stuffing(ip, attempts, hour0)
        g.vote_stuffing(int(30 * s), hour0, vote_agent, target=1 + h % g.polls)
        for ip, probes in scanners:
            g.scanner(ip, probes, hour0)
        for ip, agent in scrapers:
            g.scrape(ip, agent, int(500 * s), hour0)
        for ip in fakes:
            g.crawl("fake_crawlers", ip, GOOGLEBOT, int(120 * s), hour0)
        g.signup_spam(int(25 * s), hour0, spam_agent)
    g.records.sort(key=lambda r: (r.ts, r.ip, r.path))
    return Traffic(g.records, g.labels, g.counts)


def iter_lines(records: list[Record]) -> Iterator[str]:
    for rec in records:
        yield format_combined(rec, size=0 if rec.status >= 300 else 512)


def write_traffic(traffic: Traffic, log_path: str | Path, labels_path: str | Path) -> tuple[Path, Path]:
    """The log (combined format; gzip when the name ends in .gz) and its labels CSV (ip,label,population)."""
    log_path, labels_path = Path(log_path), Path(labels_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if log_path.suffix == ".gz" else open
    with opener(log_path, "wt", encoding="utf-8", newline="\n") as fh:
        for line in iter_lines(traffic.records):
            fh.write(line + "\n")
    with open(labels_path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ip", "label", "population"])
        for ip, (label, population) in sorted(traffic.labels.items()):
            w.writerow([ip, label, population])
    return log_path, labels_path


def read_labels(path: str | Path) -> dict[str, tuple[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return {row["ip"]: (row["label"], row["population"]) for row in csv.DictReader(fh)}
