"""``IPStats``: what one address (an IPv6 /64) did in one window, the counts, sets and samples the rules judge.
Two of them merge exactly (counts add, sets unite), so chunks of a log can be aggregated apart."""

from __future__ import annotations

SAMPLE = 5


_SETS = (
    "post_ref_hosts",
    "pages",
    "probe_paths",
    "sensitive_paths",
    "cms_paths",
    "scanner_agents",
    "agents",
    "crawler_claims",
    "odd_agents",
    "served_families",
    "ref_hosts",
    "asset_ref_hosts",
    "members",
)
_COUNTS = (
    "static",
    "sensitive",
    "auth_attempts",
    "auth_failures",
    "scanner",
    "absent_agent",
    "referred",
    "browser",
    "obsolete",
    "impossible",
    "spam_signature",
    "bad_request",
    "declared_bot",
    "sensitive_ok",
    "post",
    "get",
    "browser_post_unreferred",
)
_DICTS = ("actions", "outcomes", "statuses", "probes", "offsite", "payloads")
_FIRSTS = ("gets", "posts")  # path -> first time: merged by min


class IPStats:
    """What one address (an IPv6 /64) did in one window."""

    __slots__ = ("requests", "first", "last", *_SETS, *_COUNTS, *_DICTS, *_FIRSTS, "examples")

    def __init__(self) -> None:
        self.requests = 0
        self.first = float("inf")
        self.last = float("-inf")
        # (assigned one by one, not in a loop over _COUNTS / _SETS: a replay makes one of these per address
        # and window, and setattr in a loop costs a third of the aggregation)
        self.static = self.sensitive = self.auth_attempts = self.auth_failures = self.scanner = 0
        self.absent_agent = self.referred = self.browser = self.obsolete = self.impossible = 0
        self.spam_signature = self.bad_request = self.declared_bot = self.sensitive_ok = 0
        self.post = self.get = self.browser_post_unreferred = 0
        self.pages: set[str] = set()  # distinct non-static paths
        self.probe_paths: set[str] = set()  # ... of them answered 4xx
        self.cms_paths: set[str] = set()  # probe-family paths that counted as probes
        self.sensitive_paths: set[str] = set()
        self.served_families: set[str] = set()  # probe families it got a 2xx from while browsing (referred)
        self.scanner_agents: set[str] = set()
        self.agents: set[str] = set()
        self.odd_agents: set[str] = set()  # obsolete or impossible user agents
        self.crawler_claims: set[str] = set()
        self.ref_hosts: set[str] = set()  # referrer hosts
        self.asset_ref_hosts: set[str] = set()  # referrer hosts of its static requests
        self.members: set[str] = set()  # the addresses seen inside an IPv6 /64 (empty for an IPv4 address)
        self.post_ref_hosts: set[str] = set()  # referrer hosts of its form POSTs ("" none)
        self.actions: dict[str, int] = {}  # fingerprint -> count
        self.outcomes: dict[str, int] = {}  # "path status" of its action POSTs (votes, sign-ups) -> count
        self.statuses: dict[str, int] = {}  # "2xx" -> count
        self.probes: dict[str, int] = {}  # probe family -> requests that count as probes
        self.payloads: dict[str, int] = {}  # payload family (payloads.py) -> requests carrying one
        self.offsite: dict[str, int] = {}  # referrer host -> its non-static requests (off-site: decided later)
        self.gets: dict[str, float] = {}  # non-static path -> first GET
        self.posts: dict[str, float] = {}  # form path (not API) -> first POST
        self.examples: dict[str, list[str]] = {}  # kind -> a few "METHOD path status" that were that kind

    def merge(self, other: IPStats) -> None:
        self.requests += other.requests
        self.first = min(self.first, other.first)
        self.last = max(self.last, other.last)
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in _SETS:
            getattr(self, name).update(getattr(other, name))
        for name in _DICTS:
            mine = getattr(self, name)
            for key, value in getattr(other, name).items():
                mine[key] = mine.get(key, 0) + value
        for name in _FIRSTS:
            mine = getattr(self, name)
            for key, value in getattr(other, name).items():
                if key not in mine or value < mine[key]:
                    mine[key] = value
        for kind, lines in other.examples.items():
            self.examples[kind] = sorted(set(self.examples.get(kind, ())) | set(lines))[:SAMPLE]

    def example(self, kind: str, method: str, path: str, status: int, width: int = 120) -> None:
        """Keep the first few (in sort order, so that merged chunks keep the same ones) requests of a kind."""
        lines = self.examples.get(kind)
        if lines is None:
            lines = self.examples[kind] = []
        line = f"{method or '?'} {path[:width]} {status}"
        if line in lines or (len(lines) >= SAMPLE and line > lines[-1]):
            return
        lines.append(line)
        lines.sort()
        del lines[SAMPLE:]

    def __reduce__(self):
        # pickled as one tuple of its fields (parallel.py sends aggregates between processes): the default for a
        # class with __slots__ goes through a dict of them and unpickles about 3x slower
        return _ipstats, (tuple([getattr(self, name) for name in self.__slots__]),)

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


def _ipstats(values: tuple) -> IPStats:
    stats = IPStats.__new__(IPStats)
    for name, value in zip(IPStats.__slots__, values, strict=True):
        setattr(stats, name, value)
    return stats
