"""Per-IP aggregates: what the rules judge, built the same way from a log file and from ``RequestLog``.

Both sources are first reduced to *groups*: identical requests ``(window, ip, method, path, status, user agent,
referrer)`` with a count and first/last time. From a file that is a dictionary lookup per line
(``GroupCounter``); from the database it is one ``GROUP BY`` over the window (``selectors``-style, in
``detector.request_log_groups``). Groups then go through one classifier (``Aggregator.add_group``), so the task and
replay cannot disagree about what a path or user agent is.

Aggregates merge (counts add, sets unite): chunks of a big file are aggregated on separate Celery workers and
merged before the rules are applied, with the same result as one process (``replay.replay_distributed``).
"""

from __future__ import annotations

from collections.abc import Iterable

from .parsers import Record, no_gc
from .rules import RuleSet

SAMPLE = 5


class IPStats:
    """What one address did in one window."""

    __slots__ = (
        "requests",
        "first",
        "last",
        "static",
        "pages",
        "probe_paths",
        "sensitive",
        "sensitive_paths",
        "cms",
        "cms_paths",
        "auth_attempts",
        "auth_failures",
        "scanner",
        "scanner_agents",
        "absent_agent",
        "agents",
        "referred",
        "crawler_claims",
        "actions",
        "statuses",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.first = float("inf")
        self.last = float("-inf")
        self.static = 0
        self.pages: set[str] = set()  # distinct non-static paths
        self.probe_paths: set[str] = set()  # distinct non-static paths answered 4xx
        self.sensitive = 0
        self.sensitive_paths: set[str] = set()
        self.cms = 0
        self.cms_paths: set[str] = set()
        self.auth_attempts = 0
        self.auth_failures = 0
        self.scanner = 0
        self.scanner_agents: set[str] = set()
        self.absent_agent = 0
        self.agents: set[str] = set()
        self.referred = 0
        self.crawler_claims: set[str] = set()
        self.actions: dict[str, int] = {}  # fingerprint -> count
        self.statuses: dict[str, int] = {}  # "2xx" -> count

    def merge(self, other: IPStats) -> None:
        self.requests += other.requests
        self.first = min(self.first, other.first)
        self.last = max(self.last, other.last)
        for name in ("static", "sensitive", "cms", "auth_attempts", "auth_failures", "scanner", "absent_agent"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.referred += other.referred
        for name in (
            "pages",
            "probe_paths",
            "sensitive_paths",
            "cms_paths",
            "scanner_agents",
            "agents",
            "crawler_claims",
        ):
            getattr(self, name).update(getattr(other, name))
        for name in ("actions", "statuses"):
            mine = getattr(self, name)
            for key, value in getattr(other, name).items():
                mine[key] = mine.get(key, 0) + value

    def to_json(self) -> dict:
        out = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = sorted(value) if isinstance(value, set) else value
        return out

    @classmethod
    def from_json(cls, data: dict) -> IPStats:
        stats = cls()
        for name in cls.__slots__:
            value = data[name]
            setattr(stats, name, set(value) if isinstance(getattr(stats, name), set) else value)
        return stats


class Aggregator:
    """``(window start, ip) -> IPStats`` for one ruleset's classification (``rules.fingerprint``)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.fingerprint = rules.fingerprint
        self.window = rules.window_seconds
        self.stats: dict[tuple[int, str], IPStats] = {}
        c = rules.compiled
        r = rules.data["rules"]
        self._static = c["static"].search
        self._sensitive = c["sensitive"].search
        self._cms = c["cms"].search
        self._auth = c["auth"].search
        self._action = c["actions"].search
        self._scanner = c["scanner"].search
        self._crawlers = [(name, agent.search) for name, (agent, _) in c["crawlers"].items()]
        self._min_status = r["sensitive_paths"]["min_status"]
        self._auth_statuses = set(r["auth_failures"]["statuses"])
        self._action_methods = set(r["fingerprint_burst"]["methods"])
        self._paths: dict[str, tuple[bool, bool, bool, bool, bool]] = {}
        self._agents: dict[str, tuple[bool, tuple[str, ...]]] = {}
        self._klass: dict[int, str] = {}
        self._memo: dict | None = None

    def memo(self) -> dict:
        """Values the detector derives from these aggregates alone (parsed addresses, shared fingerprints, sorted
        samples), kept while the aggregates do not change: a parameter sweep judges the same aggregates 50 times.
        Every method that changes ``stats`` drops it."""
        if self._memo is None or self._memo.get("_size") != len(self.stats):
            self._memo = {"_size": len(self.stats)}
        return self._memo

    # ------------------------------------------------------------------ classification (cached per value)

    def _path_class(self, path: str) -> tuple[bool, bool, bool, bool, bool]:
        cls = self._paths.get(path)
        if cls is None:
            cls = (
                bool(self._static(path)),
                bool(self._sensitive(path)),
                bool(self._cms(path)),
                bool(self._auth(path)),
                bool(self._action(path)),
            )
            if len(self._paths) < 1_000_000:
                self._paths[path] = cls
        return cls

    def _agent_class(self, agent: str) -> tuple[bool, tuple[str, ...]]:
        cls = self._agents.get(agent)
        if cls is None:
            cls = (bool(self._scanner(agent.lower())), tuple(n for n, match in self._crawlers if match(agent)))
            if len(self._agents) < 200_000:
                self._agents[agent] = cls
        return cls

    # ------------------------------------------------------------------ input

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
        self._memo = None
        key = (window, ip)
        s = self.stats.get(key)
        if s is None:
            s = self.stats[key] = IPStats()
        s.requests += count
        if first < s.first:
            s.first = first
        if last > s.last:
            s.last = last
        klass = self._klass.get(status)
        if klass is None:
            klass = self._klass[status] = f"{status // 100}xx"
        s.statuses[klass] = s.statuses.get(klass, 0) + count
        static, sensitive, cms, auth, action = self._path_class(path)
        if static:
            s.static += count
        else:
            s.pages.add(path)
            if 400 <= status < 500:
                s.probe_paths.add(path)
        if sensitive and status >= self._min_status:
            s.sensitive += count
            s.sensitive_paths.add(path)
        if cms:
            s.cms += count
            s.cms_paths.add(path)
        if auth and method == "POST":
            s.auth_attempts += count
            if status in self._auth_statuses:
                s.auth_failures += count
        if agent:
            s.agents.add(agent)
            scanner, claims = self._agent_class(agent)
            if scanner:
                s.scanner += count
                s.scanner_agents.add(agent)
            if claims:
                s.crawler_claims.update(claims)
        else:
            s.absent_agent += count
        if referrer:
            s.referred += count
        if action and method in self._action_methods:
            fp = f"{method} {path} | {agent} | {referrer}"
            s.actions[fp] = s.actions.get(fp, 0) + count

    def add_records(self, records: Iterable[Record]) -> int:
        """Count identical requests first (one dict operation per record), then classify each group once."""
        counter = GroupCounter(self.window)
        n = counter.add(records)
        counter.drain_into(self)
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


class GroupCounter:
    """Identical requests counted: ``(window, ip, method, path, status, agent, referrer) -> [n, first, last]``."""

    def __init__(self, window_seconds: int) -> None:
        self.window = window_seconds
        self.groups: dict[tuple, list] = {}

    def add(self, records: Iterable[Record]) -> int:
        groups = self.groups
        window = self.window
        n = 0
        for ts, ip, method, path, status, agent, referrer in records:
            n += 1
            key = (int(ts // window) * window, ip, method, path, status, agent, referrer)
            g = groups.get(key)
            if g is None:
                groups[key] = [1, ts, ts]
            else:
                g[0] += 1
                if ts < g[1]:
                    g[1] = ts
                elif ts > g[2]:
                    g[2] = ts
        return n

    def drain_into(self, aggregator: Aggregator) -> None:
        add = aggregator.add_group
        with no_gc():
            for (w, ip, method, path, status, agent, referrer), (n, first, last) in self.groups.items():
                add(w, ip, method, path, status, agent, referrer, n, first, last)
        self.groups = {}
