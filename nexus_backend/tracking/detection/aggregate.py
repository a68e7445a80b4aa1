"""Per-IP aggregates: what the rules judge, built the same way from a log file and from ``RequestLog``.

Both sources are first reduced to *groups*: identical requests ``(window, ip, method, path, status, user agent,
referrer)`` with a count and first/last time. From a file that is a dictionary lookup per line
(``GroupCounter``); from the database it is one ``GROUP BY`` over the window (``selectors``-style, in
``database.aggregate_request_log``). Groups then go through one classifier (``Aggregator.add_group``), so the task and
replay cannot disagree about what a path or user agent is.

Aggregates merge (counts add, sets unite): chunks of a big file are aggregated on separate Celery workers and
merged before the rules are applied, with the same result as one process (``replay.replay_distributed``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import urlsplit

from ..client_ip import address_group
from .clf import canonical_ipv4
from .counting import GroupCounter
from .ipstats import SAMPLE, IPStats
from .parsers import Record
from .payloads import header_payload, payload_family, target_path
from .rules import RuleSet
from .user_agents import _DECLARED_BOT, agent_oddity, impossible_agent, obsolete_since

__all__ = ["SAMPLE", "AgentClass", "Aggregator", "GroupCounter", "IPStats", "PathClass", "agent_oddity",
           "referrer_host"]  # fmt: skip


_CACHES: dict[str, tuple[dict, ...]] = {}  # fingerprint -> the classification caches (see Aggregator)
CACHE_SIZE = 200_000  # entries per cache: beyond, values are computed each time


def clear_caches() -> None:
    """Forget every classification (a benchmark times replays as a fresh process runs them)."""
    _CACHES.clear()


def _remember(cache: dict, key, value):
    """``value``, kept in ``cache`` under ``key`` unless the cache is full (then values are computed each time)."""
    if len(cache) < CACHE_SIZE:
        cache[key] = value
    return value


class PathClass(NamedTuple):
    static: bool
    sensitive: bool
    family: str  # the probe family ("" none)
    auth: bool
    action: bool
    api: bool
    spam: bool  # a spam-bot URL signature
    absolute: bool  # not an origin-form path: an absolute URL (proxy request), "*", garbage
    payload: str  # the attack payload family its target carries ("" none; payloads.py)


class AgentClass(NamedTuple):
    scanner: bool
    claims: tuple[str, ...]  # crawlers with published networks it claims to be
    odd: int  # 0 fine, 1 obsolete from the year `since` on, 2 impossible
    browser: bool  # claims to be a browser
    declared_bot: bool  # says it is a bot (bot/crawler/spider + a contact URL or a known name)
    since: int  # odd == 1: the year from which it counts as obsolete (a request of an earlier year is not)


def referrer_host(referrer: str) -> str:
    """``https://www.Example.com:8080/a`` -> ``example.com`` ("" when there is no host)."""
    try:
        host = urlsplit(referrer).hostname or ""
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host


class Aggregator:
    """``(window start, address group) -> IPStats`` for one ruleset's classification (``rules.fingerprint``)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.fingerprint = rules.fingerprint
        self.window = rules.window_seconds
        self.stats: dict[tuple[int, str], IPStats] = {}
        c = rules.compiled
        self._static = c["static"].search
        self._api = c["api"].search
        self._sensitive = c["sensitive"].search
        self._families = [(name, regex.search) for name, regex in c["families"].items()]
        self._auth = c["auth"].search
        self._action = c["actions"].search
        self._spam = c["spam_signature"].search
        self._scanner = c["scanner"].search
        self._crawlers = [(name, crawler.agent.search) for name, crawler in c["crawlers"].items()]
        r = rules.data["rules"]
        self._min_status = r["sensitive_paths"]["min_status"]
        self._auth_statuses = frozenset(r["auth_failures"]["statuses"])
        self._form_auth_statuses = frozenset(r["auth_failures"]["form_statuses"])
        self._action_methods = frozenset(r["fingerprint_burst"]["methods"])
        self._methods = frozenset(r["bad_request"]["methods"])
        # What a path, request, agent, referrer and address are depends only on the fingerprint: the caches are
        # shared by every aggregator of it (the hourly task of a long-lived worker starts warm).
        caches = _CACHES.get(self.fingerprint)
        if caches is None:
            if len(_CACHES) >= 4:
                _CACHES.clear()
            caches = _CACHES[self.fingerprint] = ({}, {}, {}, {}, {}, {}, {})
        self._paths, self._requests, self._agents, self._hosts, self._groups, self._klass, self._targets = caches
        self._memo: dict | None = None

    def memo(self) -> dict:
        """Values the detector derives from these aggregates alone (parsed addresses, shared fingerprints, sorted
        samples), kept while the aggregates do not change: a parameter sweep judges the same aggregates 50 times.
        Every method that changes ``stats`` drops it."""
        if self._memo is None or self._memo.get("_size") != len(self.stats):
            self._memo = {"_size": len(self.stats)}
        return self._memo

    # ------------------------------------------------------------------ classification (cached per value)

    def path_class(self, path: str) -> PathClass:
        cls = self._paths.get(path)
        if cls is None:
            target = path
            path = path.partition("?")[0]  # a query string is kept only with a payload: the path is what it asks
            family = next((name for name, match in self._families if match(path)), "")
            cls = PathClass(
                bool(self._static(path)),
                bool(self._sensitive(path)),
                family,
                bool(self._auth(path)),
                bool(self._action(path)),
                bool(self._api(path)),
                bool(self._spam(path)),
                not path.startswith("/"),
                payload_family(target),
            )
            _remember(self._paths, target, cls)
        return cls

    def agent_class(self, agent: str) -> AgentClass:
        cls = self._agents.get(agent)
        if cls is None:
            lower = agent.lower()
            declared = bool(_DECLARED_BOT.search(lower))
            since = obsolete_since(agent)
            cls = AgentClass(
                bool(self._scanner(lower)),
                tuple(n for n, match in self._crawlers if match(agent)),
                2 if impossible_agent(agent) else 1 if since else 0,
                lower.startswith("mozilla/") and not declared,
                declared,
                since,
            )
            _remember(self._agents, agent, cls)
        return cls

    def group(self, ip: str) -> str:
        """The address group detection keys on (``client_ip.address_group``: IPv6 by its /64)."""
        key = self._groups.get(ip)
        if key is None:
            key = _remember(self._groups, ip, ip if canonical_ipv4(ip) else address_group(ip) or ip)
        return key

    def host(self, referrer: str) -> str:
        """The referrer's host (cached; not one that carries a payload, which ``add_group`` must see each time)."""
        host = self._hosts.get(referrer)
        if host is None:
            host = referrer_host(referrer)
            if not header_payload(referrer):
                _remember(self._hosts, referrer, host)
        return host

    # ------------------------------------------------------------------ input

    def request_class(self, method: str, path: str, status: int) -> tuple:
        """What a (method, path, status) is, computed once: ``(static, form_post, rare, pc)``; ``rare`` says one of
        the less common kinds (sensitive, probe family, login, spam, bad request, action) applies."""
        key = (method, path, status)
        rc = self._requests.get(key)
        if rc is None:
            pc = self.path_class(path)
            login = pc.auth and method == "POST"
            rare = (
                pc.sensitive
                or bool(pc.payload)
                or bool(pc.family)
                or login
                or (pc.spam and method == "POST")
                or pc.absolute
                or method not in self._methods
                or (pc.action and method in self._action_methods)
            )
            form_post = not pc.static and method == "POST" and not (pc.api or pc.action)
            rc = _remember(self._requests, key, (pc.static, form_post, rare, pc))
        return rc

    def add_group(
        self,
        window: int,
        ip: str,
        method: str,
        path: str,
        status: int,
        agent: str,
        referrer: str,
        count: int,
        first: float,
        last: float,
    ) -> None:
        if not method and (path == "-" or not path):  # no request: a connection closed unused (Apache "-" 408,
            return  # nginx "" 400), as browsers leave preconnects and keep-alives all day: nothing to judge
        self._memo = None
        if "?" in path:  # a payload kept by target_path (RequestLog, a parsed log), or a record made in memory
            target = self._targets.get(path)
            path = target if target is not None else _remember(self._targets, path, target_path(path))
        group = self._groups.get(ip)
        if group is None:
            group = self.group(ip)
        key = (window, group)
        s = self.stats.get(key)
        if s is None:
            s = self.stats[key] = IPStats()
        if group != ip:  # an IPv6 address, judged by its /64
            s.members.add(ip)
        s.requests += count
        if first < s.first:
            s.first = first
        if last > s.last:
            s.last = last
        klass = self._klass.get(status)
        if klass is None:
            klass = self._klass[status] = f"{status // 100}xx"
        s.statuses[klass] = s.statuses.get(klass, 0) + count
        static, form_post, rare, pc = self._requests.get((method, path, status)) or self.request_class(
            method, path, status
        )
        host = ""
        if referrer:
            known = self._hosts.get(referrer)
            if known is not None:
                host = known
            else:  # not seen yet, or a Referer carrying a payload (Log4Shell, Shellshock): never cached
                host = self.host(referrer)
                family = header_payload(referrer)
                if family:
                    s.payloads[family] = s.payloads.get(family, 0) + count
                    s.example(f"payload:{family}", method, f"{path} (Referer: {referrer})", status, 300)
            s.referred += count
            if host:
                s.ref_hosts.add(host)
        if method == "POST":
            s.post += count
        elif method == "GET" or method == "HEAD":
            s.get += count
        if static:
            s.static += count
            if host:
                s.asset_ref_hosts.add(host)
        else:
            s.pages.add(path)
            if 400 <= status < 500:
                s.probe_paths.add(path)
            if method == "GET":
                if first < s.gets.get(path, first + 1):
                    s.gets[path] = first
            elif form_post:  # a form: HTML login forms included
                if first < s.posts.get(path, first + 1):
                    s.posts[path] = first
                s.post_ref_hosts.add(host)  # "" when the form POST came without a referrer
                s.example("form_post", method, path, status)
            if host:
                s.offsite[host] = s.offsite.get(host, 0) + count
        if rare:
            self._add_rare(s, pc, method, path, status, agent, referrer, host, count)
        if agent:
            s.agents.add(agent)
            ac = self._agents.get(agent) or self.agent_class(agent)
            if ac.browser:
                s.browser += count
                if method == "POST" and not referrer:
                    s.browser_post_unreferred += count
            elif ac.declared_bot:
                s.declared_bot += count
            if ac.scanner:
                s.scanner += count
                s.scanner_agents.add(agent)
            if ac.claims:
                s.crawler_claims.update(ac.claims)
            if ac.odd == 2:
                s.odd_agents.add(agent)
                s.impossible += count
            elif ac.odd and time.gmtime(window).tm_year >= ac.since:  # obsolete when the request was made
                s.odd_agents.add(agent)
                s.obsolete += count
        else:
            s.absent_agent += count

    def _add_rare(self, s: IPStats, pc: PathClass, method, path, status, agent, referrer, host, count) -> None:
        if pc.sensitive and not (pc.auth and method == "POST"):  # a login POST is auth_failures' business
            if status >= self._min_status:
                s.sensitive += count
                s.sensitive_paths.add(path)
                s.example("sensitive", method, path, status)
            elif status < 300 and not pc.auth:
                s.sensitive_ok += count  # let in past the login page: staff, not a prober
        if pc.family:
            if 200 <= status < 300 and host:
                s.served_families.add(pc.family)
            s.probes[pc.family] = s.probes.get(pc.family, 0) + count
            s.cms_paths.add(path)
            s.example(f"probe:{pc.family}", method, path, status)
        if pc.payload:
            s.payloads[pc.payload] = s.payloads.get(pc.payload, 0) + count
            s.example(f"payload:{pc.payload}", method, path, status, 300)
        if pc.auth and method == "POST" and status != 429:  # a refused attempt (429) never reached a password
            s.auth_attempts += count
            # an API answers a failed login 4xx; an HTML form shows itself again (200) and redirects on success
            if status in (self._auth_statuses if pc.api else self._form_auth_statuses):
                s.auth_failures += count
                s.example("login_failure", method, path, status)
        if pc.spam and method == "POST":
            s.spam_signature += count
            s.example("spam_signature", method, path, status)
        if pc.absolute or method not in self._methods:
            s.bad_request += count
            s.example("bad_request", method, path, status)
        if pc.action and method in self._action_methods:
            fp = f"{method} {path} | {agent} | {referrer}"
            s.actions[fp] = s.actions.get(fp, 0) + count
            outcome = f"{path} {status}"
            s.outcomes[outcome] = s.outcomes.get(outcome, 0) + count

    def describe(self, method: str, path: str, status: int, agent: str, referrer: str) -> list[str]:
        """What the classifier makes of one request (``replay_log --explain``)."""
        pc, tags = self.path_class(path), []
        tags += [name for name in ("static", "sensitive", "auth", "api", "action") if getattr(pc, name)]
        if pc.family:
            tags.append(f"probe:{pc.family}")
        if pc.payload:
            tags.append(f"payload:{pc.payload}")
        if pc.spam and method == "POST":
            tags.append("spam_signature")
        if pc.absolute or method not in self._methods:
            tags.append("bad_request")
        if agent:
            ac = self.agent_class(agent)
            if ac.scanner:
                tags.append("scanner_agent")
            if ac.odd:
                tags.append("impossible_agent" if ac.odd == 2 else f"obsolete_agent (from {ac.since})")
            tags += [f"claims:{c}" for c in ac.claims]
        else:
            tags.append("no_agent")
        if referrer:
            tags.append(f"referrer:{self.host(referrer) or '?'}")
            if family := header_payload(referrer):
                tags.append(f"payload:{family} (referrer)")
        return tags

    def add_records(self, records: Iterable[Record]) -> int:
        """Count identical requests first (one dict operation per record), then classify each group once."""
        counter = GroupCounter(self.window)
        n = counter.add(records)
        counter.drain_into(self.add_group)
        return n

    def merge(self, other: Aggregator) -> None:
        if other.fingerprint != self.fingerprint:
            raise ValueError("aggregates made with rules that classify requests differently cannot be merged")
        self._memo = None
        for key, s in other.stats.items():
            mine = self.stats.get(key)
            if mine is None:
                self.stats[key] = s
            else:
                mine.merge(s)

    # ------------------------------------------------------------------ transport (Celery, JSON)

    def to_json(self) -> dict:
        return {
            "fingerprint": self.fingerprint,
            "stats": [[w, ip, s.to_json()] for (w, ip), s in self.stats.items()],
        }

    def merge_json(self, data: dict) -> None:
        if data["fingerprint"] != self.fingerprint:
            raise ValueError("a partial aggregate made with other rules cannot be merged")
        self._memo = None
        for w, ip, raw in data["stats"]:
            s = IPStats.from_json(raw)
            mine = self.stats.get((w, ip))
            if mine is None:
                self.stats[(w, ip)] = s
            else:
                mine.merge(s)
