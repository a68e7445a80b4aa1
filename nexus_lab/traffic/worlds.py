"""Worlds: a site layout and a mix of populations, generated for a span of hours from one seed.

- ``polls``: this project's poll API and its single-page app (votes, JWT logins, Django admin, a mobile app).
- ``site``: a generic content site (a blog with comments, a feed, a hand-made login form, static assets).
- ``personal``: a small personal site on the ``site`` layout where bots outnumber readers (the kind of log
  most people can get their hands on); the committed sample ``data/traffic-sample.log.gz`` is one.

A mix gives, per population, how many members (addresses, or campaigns where the population says so) a day
at ``scale`` 1; ``generate`` multiplies by the days and the scale (at least one member of each population
in the mix). ``low_and_slow`` members last the whole span whatever its length, so they scale with ``scale`` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nexus_backend.tracking.detection.parsers import Record
from nexus_lab.traffic import attacks, benign, sites
from nexus_lab.traffic.core import Builder, Label

DEFAULT_START = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)
POPULATION_FUNCTIONS = {
    name: getattr(module, name)
    for module, names in (
        (benign, ["humans", "viral_poll", "site_owner", "campus_nat", "carrier_nat", "developer", "uptime_monitors",
                  "feed_readers", "partner_api", "crawlers", "seo_crawlers"]),
        (attacks, ["scanners", "payload_scanners", "fake_crawlers", "credential_stuffing", "password_spraying",
                   "brute_force", "referrer_spam", "comment_spam", "signup_spam", "trackback_spam", "scrapers",
                   "headless_scrapers", "ipv6_rotation", "vote_stuffing", "bad_agents", "low_and_slow"]),
    )
    for name in names
}  # fmt: skip

MIXES: dict[str, dict[str, float]] = {
    "polls": {
        "humans": 5600, "viral_poll": 400, "site_owner": 1, "campus_nat": 120, "carrier_nat": 800, "developer": 0.5,
        "uptime_monitors": 3, "partner_api": 2, "crawlers": 12, "seo_crawlers": 6,
        "scanners": 120, "payload_scanners": 40, "fake_crawlers": 6, "credential_stuffing": 1,
        "password_spraying": 20, "brute_force": 2,
        "referrer_spam": 2, "signup_spam": 25, "trackback_spam": 6, "scrapers": 3, "headless_scrapers": 3,
        "ipv6_rotation": 1, "vote_stuffing": 1, "bad_agents": 8, "low_and_slow": 15,
    },
    "site": {
        "humans": 2000, "viral_poll": 300, "site_owner": 1, "campus_nat": 60, "carrier_nat": 300, "developer": 0.3,
        "uptime_monitors": 2, "feed_readers": 25, "crawlers": 15, "seo_crawlers": 10,
        "scanners": 150, "payload_scanners": 60, "fake_crawlers": 8, "credential_stuffing": 1,
        "password_spraying": 10, "brute_force": 1,
        "referrer_spam": 4, "comment_spam": 30, "trackback_spam": 15, "scrapers": 2, "headless_scrapers": 2,
        "ipv6_rotation": 1, "bad_agents": 12, "low_and_slow": 15,
    },
    "personal": {
        "humans": 1000, "site_owner": 1, "uptime_monitors": 1, "feed_readers": 15, "crawlers": 20, "seo_crawlers": 15,
        "scanners": 80, "fake_crawlers": 4, "credential_stuffing": 0.5, "password_spraying": 6, "brute_force": 0.5,
        "referrer_spam": 2, "comment_spam": 10, "trackback_spam": 5, "scrapers": 1, "headless_scrapers": 1,
        "bad_agents": 6, "low_and_slow": 8,
    },
}  # fmt: skip
WORLDS = tuple(MIXES)
SEEDS = {"polls": 7, "site": 11, "personal": 2026}  # the default seed of each world


@dataclass
class Traffic:
    records: list[Record]
    labels: dict[str, Label]  # ip -> Label(label, population, family, hard_benign, world)
    counts: dict[str, int] = field(default_factory=dict)  # population -> requests
    world: str = "polls"
    seed: int = 0


def generate(
    *,
    world: str = "polls",
    seed: int | None = None,
    hours: int = 24,
    scale: float = 1.0,
    start: datetime = DEFAULT_START,
    mix: dict[str, float] | None = None,
) -> Traffic:
    """Labelled traffic of ``world`` for ``hours`` hours (``mix`` overrides members a day per population).

    Refuses (``ValueError``) an unknown world or population, ``hours < 1`` and a ``scale`` that is not positive."""
    if world not in MIXES:
        raise ValueError(f"unknown world {world!r} (known: {', '.join(WORLDS)})")
    if hours < 1 or not scale > 0:
        raise ValueError("hours must be at least 1 and scale positive")
    members = {**MIXES[world], **(mix or {})}
    unknown = sorted(set(members) - set(POPULATION_FUNCTIONS))
    if unknown:
        raise ValueError(f"unknown population(s) {', '.join(unknown)} (known: {', '.join(POPULATION_FUNCTIONS)})")
    seed = SEEDS[world] if seed is None else seed
    b = Builder(seed=seed, start=start.timestamp(), hours=hours, world=world)
    site = sites.poll_site(b.rng) if world == "polls" else sites.content_site(b.rng)
    days = hours / 24
    for name, per_day in members.items():
        if per_day <= 0:
            continue
        n = per_day * scale * (1 if name == "low_and_slow" else days)
        POPULATION_FUNCTIONS[name](b, site, max(1, math.floor(n + b.rng.random())))
    b.records.sort(key=lambda r: (r.ts, r.ip, r.path))
    seen = {r.ip for r in b.records}
    labels = {ip: label for ip, label in b.labels.items() if ip in seen}
    return Traffic(b.records, labels, b.counts, world, seed)
