"""Judging the same aggregates again with other parameters (a notebook's sweep, ``bench_detect``'s grid) gives what
judging them afresh gives, while only the rules whose parameters changed run again (``detector._judge`` keeps
each rule's hits with the aggregates)."""

from __future__ import annotations

import pytest

from nexus_backend.tracking.detection import detector
from nexus_backend.tracking.detection.aggregate import Aggregator
from nexus_backend.tracking.detection.parsers import format_combined
from nexus_backend.tracking.detection.replay import replay_file
from nexus_backend.tracking.detection.rules import load_rules
from nexus_lab import traffic


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    t = traffic.generate(world="site", hours=2, scale=0.5, seed=11)
    path = tmp_path_factory.mktemp("sweep") / "site.log"
    path.write_text("\n".join(format_combined(r) for r in t.records) + "\n")
    return replay_file(path, processes=1)


def _fresh(result, rules):
    """The same aggregates in a new aggregator: nothing remembered from earlier judges."""
    fresh = Aggregator(result.rules)
    fresh.merge(result.aggregator)
    return detector.judge(fresh, rules)


def _same(a, b) -> bool:
    return [f.__dict__ for f in a] == [f.__dict__ for f in b]


# each changes what a cached rule result depends on: its own number, the threshold, whether it runs, the site
# profile every rule sees, the addresses skipped
CHANGES = [
    {"threshold": 0.3},
    {"volume.max_requests": 40},
    {"form_spam.max_seconds": 1, "threshold": 0.6},
    {"fake_browser.enabled": False},
    {"site": {"own_hosts": ["elsewhere.example"]}},
    {"site": {"served_min_clients": 1}},
    {"whitelist": ["0.0.0.0/1"]},
]


def test_rejudging_with_other_parameters_matches_judging_afresh(replayed):
    base = replayed.rules
    assert len(replayed.flagged) > 5  # the comparison is about something
    seen = set()
    for change in [*CHANGES, {}, *CHANGES[::-1]]:  # and back again: nothing of one point leaks into another
        rules = base.with_params(change)
        again, fresh = detector.judge(replayed.aggregator, rules), _fresh(replayed, rules)
        assert _same(again, fresh), change
        seen.add(tuple((f.ip, f.score, f.flagged) for f in fresh))
    assert len(seen) >= 5  # the changes changed the verdicts


def test_only_the_rules_whose_parameters_changed_run_again(replayed, monkeypatch):
    calls: dict[str, int] = {}

    def counted(name, fn):
        def rule(s, params, ctx):
            calls[name] = calls.get(name, 0) + 1
            return fn(s, params, ctx)

        return rule

    for name, fn in list(detector.RULES.items()):
        monkeypatch.setitem(detector.RULES, name, counted(name, fn))
    base = load_rules()
    aggregator = Aggregator(base)
    aggregator.merge(replayed.aggregator)  # nothing remembered yet
    detector.judge(aggregator, base)
    assert set(calls) == {name for name in detector.RULES if base.enabled(name)}
    calls.clear()
    detector.judge(aggregator, base.with_params({"threshold": 0.9}))
    assert calls == {}
    detector.judge(aggregator, base.with_params({"threshold": 0.9, "volume.max_requests": 7}))
    assert set(calls) == {"volume"}
