"""What the judged traffic says about the site it was sent to: its own host names, the probe families it serves,
whether it serves assets and whether its browsers send a Referer (learned once per aggregate)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .aggregate import Aggregator, IPStats
from .rules import RuleSet


@dataclass(frozen=True)
class Site:
    """What the judged traffic says about the site it was sent to (learned once per aggregate, see ``learn``)."""

    own_hosts: frozenset[str]  # referrer hosts that are the site itself
    served: frozenset[str]  # probe families the site runs (not probes there)
    has_assets: bool  # the site serves static files that browsers load
    browsers_refer: bool  # most browsers send a Referer here (the site sets no no-referrer policy)
    failing_logins: dict[int, int]  # window -> addresses whose logins all failed (login_campaign)


def learn_site(aggregator: Aggregator, rules: RuleSet, served_families: Iterable[str] = ()) -> Site:
    """The site profile from the aggregates: its own host (the referrer of its static files, else the commonest
    referrer), the probe families it serves (``site.served_min_clients`` distinct clients got a 2xx from them while
    browsing, plus ``served_families`` from the URL configuration) and whether browsers load assets there."""
    site = rules.data["site"]
    memo = aggregator.memo()
    max_other = rules.data["rules"]["login_campaign"]["max_other_requests"]
    key = ("site", repr(site), tuple(sorted(served_families)), max_other)
    if key in memo:
        return memo[key]
    asset_hosts: dict[str, int] = {}
    ref_hosts: dict[str, int] = {}
    family_clients: dict[str, set[str]] = {}  # clients that loaded assets too (where the site has assets)
    family_browsers: dict[str, set[str]] = {}  # clients that requested several pages (where it has none)
    failing: dict[int, int] = {}
    requests = static = browsers = referring = 0
    for (w, ip), s in aggregator.stats.items():
        requests += s.requests
        static += s.static
        for host in s.asset_ref_hosts:
            asset_hosts[host] = asset_hosts.get(host, 0) + 1
        for host in s.ref_hosts:
            ref_hosts[host] = ref_hosts.get(host, 0) + 1
        for family in s.served_families:
            if s.static:
                family_clients.setdefault(family, set()).add(ip)
            if len(s.pages) >= 3:
                family_browsers.setdefault(family, set()).add(ip)
        if _only_failed_logins(s, max_other):
            failing[w] = failing.get(w, 0) + 1
        if s.browser >= 3:
            browsers += 1
            referring += s.referred > 0
    own = set(site["own_hosts"])
    if not own:
        counts = asset_hosts or ref_hosts
        if counts:
            top = max(counts.values())
            own = {h for h, n in counts.items() if n >= max(2, top // 4)} or {max(counts, key=lambda h: counts[h])}
    has_assets = requests > 0 and static >= site["min_static_share"] * requests
    # A family is served when readers browse it: a 2xx with a referrer from clients that also loaded assets (or,
    # on a site without assets, requested several pages), so probes answered 200 by a catch-all do not count.
    readers = family_clients if has_assets else family_browsers
    served = {f for f, ips in readers.items() if len(ips) >= site["served_min_clients"]}
    out = Site(
        own_hosts=frozenset(own),
        served=frozenset(served | set(served_families)),
        has_assets=has_assets,
        browsers_refer=browsers >= 5 and referring >= 0.5 * browsers,  # unknown (False) on too few browsers
        failing_logins=failing,
    )
    memo[key] = out
    return out


def _only_failed_logins(s: IPStats, max_other: int) -> bool:
    return s.auth_failures > 0 and s.auth_failures == s.auth_attempts and s.requests - s.auth_attempts <= max_other
