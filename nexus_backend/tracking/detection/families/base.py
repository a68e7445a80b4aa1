"""What every rule gets and returns: a ``Hit`` (score, reason, evidence) or ``None``, given the address's
``IPStats``, its parameters from rules.yaml and a ``Context`` (the site profile, compiled patterns, what the
detector derived from all the aggregates)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from ..aggregate import SAMPLE, IPStats
from ..derived import Derived

if TYPE_CHECKING:
    from ..site import Site


class Hit(NamedTuple):
    score: float
    reason: str
    evidence: dict


@dataclass
class Context:
    """What a rule may look at besides the address's own ``IPStats``."""

    key: tuple[int, str]
    site: Site
    compiled: dict
    ranked: dict
    derived: Derived
    # (window, address) -> (addresses, account): the most addresses that failed logins on one account this address
    # also failed on (database.account_failures; only where the log names the account a login tried)
    accounts: dict = field(default_factory=dict)
    # what a rule computes once per judge rather than once per address (the parameters, the site and the
    # patterns do not change during one judge): its keys start with the rule's name
    scratch: dict = field(default_factory=dict)

    @property
    def login_paths(self) -> Callable[[str], object]:
        return self.compiled["auth"].search

    def sample(self, name: str, values: set[str]) -> list[str]:
        return self.derived.sample(self.key, name, values)


def requests_of(s: IPStats, *kinds: str) -> list[str]:
    out: list[str] = []
    for kind in kinds:
        out += [x for x in s.examples.get(kind, ()) if x not in out]
    return out[:SAMPLE]
