"""Scoring the detector against ground-truth labels (``ip -> (label, population)``, label ``attack``/``benign``).

Used by notebook 02 and the tests: precision/recall/F1 overall and per rule, the curriculum's volume-only
baseline, a parameter sweep and a threshold curve. Addresses missing from the labels count as benign.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from .detector import by_ip, judge
from .replay import ReplayResult
from .rules import RuleSet


def confusion(flagged: Iterable[str], labels: dict[str, tuple[str, str]], seen: Iterable[str]) -> dict:
    """Counts and rates for ``flagged`` among the addresses ``seen`` in the log."""
    flagged = set(flagged)
    seen = set(seen)
    attacks = {ip for ip in seen if labels.get(ip, ("benign",))[0] == "attack"}
    tp = len(flagged & attacks)
    fp = len(flagged - attacks)
    fn = len(attacks - flagged)
    tn = len(seen) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": precision, "recall": recall, "f1": f1}


def _seen(result: ReplayResult) -> set[str]:
    return {ip for _, ip in result.aggregator.stats}


def overall(result: ReplayResult, labels: dict, rules: RuleSet | None = None) -> dict:
    flagged = result.flagged if rules is None else result.rejudge(rules)
    return confusion(flagged, labels, _seen(result))


def per_rule(result: ReplayResult, labels: dict, rules: RuleSet | None = None) -> list[dict]:
    """Each rule alone: the addresses it trips (whatever their total score) against all attacks."""
    verdicts = result.verdicts if rules is None else by_ip(judge(result.aggregator, rules))
    seen = _seen(result)
    rows = []
    for name in result.rules.names:
        tripped = {ip for ip, f in verdicts.items() if name in f.rules}
        row = {"rule": name, "tripped": len(tripped), **confusion(tripped, labels, seen)}
        attacks_caught = {labels[ip][1] for ip in tripped if ip in labels and labels[ip][0] == "attack"}
        row["catches"] = ", ".join(sorted(attacks_caught))
        row["false_alarms"] = ", ".join(
            sorted({labels.get(ip, ("", "unlabelled"))[1] for ip in tripped} - attacks_caught)
        )
        rows.append(row)
    return rows


def volume_baseline(rules: RuleSet, max_requests: int = 100) -> RuleSet:
    """The curriculum's detector: flag an address with more than ``max_requests`` requests in the hour, nothing else."""
    return rules.only("volume").with_params({"volume.max_requests": max_requests, "volume.score": 1.0})


def by_population(result: ReplayResult, labels: dict, rules: RuleSet | None = None) -> list[dict]:
    """How many addresses of each population were flagged."""
    flagged = result.flagged if rules is None else result.rejudge(rules)
    counts: dict[str, list[int]] = {}
    for ip in _seen(result):
        label, population = labels.get(ip, ("benign", "unlabelled"))
        row = counts.setdefault(population, [0, 0, label])
        row[0] += 1
        row[1] += ip in flagged
    return [
        {"population": p, "label": label, "addresses": n, "flagged": f, "share": f / n if n else 0.0}
        for p, (n, f, label) in sorted(counts.items(), key=lambda kv: (kv[1][2], kv[0]))
    ]


def sweep(result: ReplayResult, labels: dict, grid: dict[str, list]) -> list[dict]:
    """Every combination of ``grid`` (``{"threshold": [...], "volume.max_requests": [...]}``), scored."""
    names = list(grid)
    rows = []
    for values in itertools.product(*(grid[n] for n in names)):
        params = dict(zip(names, values, strict=True))
        rules = result.rules.with_params(params)
        rows.append({**params, **overall(result, labels, rules)})
    return rows


def threshold_curve(result: ReplayResult, labels: dict, thresholds: Iterable[float]) -> list[dict]:
    """Precision and recall when an address is flagged at score >= t (the scores do not depend on t)."""
    verdicts = by_ip(judge(result.aggregator, result.rules.with_params({"threshold": 1.0})))
    seen = _seen(result)
    return [
        {"threshold": t, **confusion({ip for ip, f in verdicts.items() if f.score >= t - 1e-9}, labels, seen)}
        for t in thresholds
    ]
