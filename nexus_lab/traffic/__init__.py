"""A seeded generator of labelled web traffic that looks like the internet, not like our rules.

``generate(world=..., seed=..., hours=..., scale=...)`` returns ``Traffic`` (records and a ``Label`` per address:
attack or benign, population, family, hard-benign mark, world); ``write_traffic`` writes the Apache combined log
``manage.py replay_log`` reads and the labels CSV; ``manage.py gen_traffic`` does both from a shell.

- ``sites``: the layouts (``poll_site``: this project; ``content_site``: a blog), different per seed.
- ``benign``: readers with their assets, a viral link, campus and carrier NATs, a developer, the site's owner,
  uptime monitors, feed readers, an API partner, genuine crawlers from their published networks, SEO crawlers.
- ``attacks``: one-probe scanners, fake crawlers, distributed credential stuffing and password spraying (1-3
  tries per address across hours), brute force, referrer/comment/sign-up/trackback spam, scrapers (headless too),
  IPv6 rotation inside one /64, vote stuffing, obsolete agents, low-and-slow attackers (a few requests a day).
- ``worlds``: the mixes (``polls``, ``site``, ``personal``) and ``generate``.
Every population draws its members' counts, pauses, agents and paths from distributions, so no single
threshold separates attackers from benign traffic by construction.
"""

from nexus_lab.traffic.core import FAMILIES, POPULATIONS, Label
from nexus_lab.traffic.files import LABEL_COLUMNS, iter_lines, read_labels, write_traffic
from nexus_lab.traffic.worlds import DEFAULT_START, MIXES, SEEDS, WORLDS, Traffic, generate

__all__ = [
    "DEFAULT_START",
    "FAMILIES",
    "LABEL_COLUMNS",
    "MIXES",
    "POPULATIONS",
    "SEEDS",
    "WORLDS",
    "Label",
    "Traffic",
    "generate",
    "iter_lines",
    "read_labels",
    "write_traffic",
]
