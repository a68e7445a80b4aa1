"""The generator's shared parts: ground-truth labels, the population registry and the ``Builder`` every
population writes its requests through."""

from __future__ import annotations

import math
import random
from typing import NamedTuple

from nexus_backend.tracking.detection.parsers import Record
from nexus_lab.traffic import agents


class Label(NamedTuple):
    """Ground truth for one address (a tuple, so ``label, population = labels[ip][:2]`` keeps working)."""

    label: str  # attack | benign
    population: str
    family: str = ""
    hard_benign: bool = False  # benign traffic a careless rule flags: loud, shared, automated or crawling
    world: str = ""


# population -> (label, family, hard_benign)
POPULATIONS: dict[str, tuple[str, str, bool]] = {
    "humans": ("benign", "human", False),
    "viral_poll": ("benign", "human", True),
    "site_owner": ("benign", "human", True),
    "campus_nat": ("benign", "shared_address", True),
    "carrier_nat": ("benign", "shared_address", True),
    "developer": ("benign", "automation", True),
    "uptime_monitors": ("benign", "automation", True),
    "feed_readers": ("benign", "automation", True),
    "partner_api": ("benign", "automation", True),
    "crawlers": ("benign", "crawler", True),
    "seo_crawlers": ("benign", "crawler", False),
    "scanners": ("attack", "probe", False),
    "payload_scanners": ("attack", "payload", False),
    "fake_crawlers": ("attack", "impersonation", False),
    "credential_stuffing": ("attack", "brute_force", False),
    "password_spraying": ("attack", "brute_force", False),
    "brute_force": ("attack", "brute_force", False),
    "referrer_spam": ("attack", "spam", False),
    "comment_spam": ("attack", "spam", False),
    "signup_spam": ("attack", "spam", False),
    "trackback_spam": ("attack", "spam", False),
    "scrapers": ("attack", "scraping", False),
    "headless_scrapers": ("attack", "scraping", False),
    "ipv6_rotation": ("attack", "rotation", False),
    "vote_stuffing": ("attack", "abuse", False),
    "bad_agents": ("attack", "bad_agent", False),
    "low_and_slow": ("attack", "low_and_slow", False),
}
FAMILIES = sorted({family for _, family, _ in POPULATIONS.values()})
HOUR = 3600.0
DAY = 86400.0
# Share of a day's human visits in each UTC hour (a site whose readers are mostly in Europe and Africa).
DIURNAL = [1, 0.7, 0.5, 0.4, 0.4, 0.6, 1.2, 2.2, 3.2, 3.8, 4.0, 4.1, 4.3, 4.2, 4.0, 3.9, 3.8, 3.8, 4.0, 4.3, 4.2,
           3.6, 2.6, 1.6]  # fmt: skip


class Builder:
    """Collects records and labels for one world; every random choice comes from ``rng`` (seeded)."""

    def __init__(self, *, seed: int, start: float, hours: int, world: str) -> None:
        self.rng = random.Random(seed)
        self.start = start
        self.end = start + hours * HOUR
        self.hours = hours
        self.world = world
        self.records: list[Record] = []
        self.labels: dict[str, Label] = {}
        self.counts: dict[str, int] = {}

    # --------------------------------------------------------------------------------- addresses

    def claim(self, ip: str, population: str) -> str | None:
        """Label ``ip`` for ``population``; None when another population already holds it."""
        if ip in self.labels:
            return ip if self.labels[ip].population == population else None
        label, family, hard = POPULATIONS[population]
        self.labels[ip] = Label(label, population, family, hard, self.world)
        return ip

    def ip(self, population: str, *, hosting: bool | None = None, v6: float = 0.0) -> str:
        """A fresh public address: residential or hosting space (``hosting=None``: either), IPv6 with chance ``v6``."""
        rng = self.rng
        while True:
            if rng.random() < v6:
                ip = agents.ipv6_in(rng, agents.ipv6_network(rng))
            else:
                hosting_now = rng.random() < 0.5 if hosting is None else hosting
                ip = agents.public_ipv4(rng, agents.HOSTING if hosting_now else agents.RESIDENTIAL)
            if ip not in self.labels:
                self.claim(ip, population)  # a free address: always claimed
                return ip

    def ip_in(self, population: str, network: str) -> str:
        for _ in range(50):
            got = self.claim(agents.in_network(self.rng, network), population)
            if got:
                return got
        return self.ip(population)

    # --------------------------------------------------------------------------------- time

    def when(self, *, diurnal: bool = True) -> float:
        """A moment in the world's span; with ``diurnal``, weighted by the hour of the day."""
        rng = self.rng
        if not diurnal:
            return rng.uniform(self.start, self.end)
        day = rng.randrange(max(1, math.ceil(self.hours / 24)))
        hour = rng.choices(range(24), DIURNAL)[0]
        t = self.start + day * DAY + hour * HOUR + rng.uniform(0, HOUR)
        return t if t < self.end else rng.uniform(self.start, self.end)

    def count(self, mean: float, *, spread: float = 0.6, low: int = 1, high: int = 100_000) -> int:
        """A per-member count: log-normal around ``mean`` (``spread``: sigma), clipped to [low, high]."""
        value = self.rng.lognormvariate(math.log(max(mean, 1e-9)) - spread * spread / 2, spread)
        return max(low, min(high, round(value)))

    def think(self, mean: float) -> float:
        """A human pause in seconds (log-normal: mostly short, sometimes long)."""
        return self.rng.lognormvariate(math.log(mean) - 0.5, 1.0)

    # --------------------------------------------------------------------------------- requests

    def add(self, t: float, ip: str, method: str, path: str, status: int, agent: str = "", referrer: str = "") -> None:
        if self.start <= t < self.end:
            self.records.append(Record(float(int(t)), ip, method, path, status, agent, referrer))
            population = self.labels[ip].population
            self.counts[population] = self.counts.get(population, 0) + 1
