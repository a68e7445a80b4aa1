"""Scoring the detector against ground-truth labels (``ip -> (label, population, ...)``, label ``attack``/``benign``;
``traffic.read_labels`` gives them with a family and a hard-benign mark).

Used by notebook 02 and the tests: precision/recall/F1 overall, per rule and per attack family, false alarms by
population, the curriculum's rule as a baseline, a parameter sweep with a stated choice (``tune``) and a threshold
curve. Addresses missing from the labels count as benign. Addresses are compared by their group
(``client_ip.address_group``: an IPv6 address by its /64), whether the detector reports addresses or groups; a group
is an attacker when any of its labelled addresses is.

- precision: of the addresses flagged, the share that are attackers (a false alarm lowers it);
- recall: of the attackers present, the share flagged (a miss lowers it);
- F1: their harmonic mean, ``2 P R / (P + R)``: high only when both are.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import yaml

from nexus_backend.tracking.client_ip import address_group
from nexus_backend.tracking.detection.detector import by_ip, judge
from nexus_backend.tracking.detection.replay import ReplayResult
from nexus_backend.tracking.detection.rules import RulesError, RuleSet, load_rules

CURRICULUM_PATHS = ["^/admin(/|$)", "^/login(/|$)"]


_KEYS: dict[str, str] = {}  # address -> its group: a sweep compares the same addresses at every grid point


def _key(ip: str) -> str:
    key = _KEYS.get(ip)
    if key is None:
        if len(_KEYS) >= 1_000_000:
            _KEYS.clear()
        key = _KEYS[ip] = address_group(ip) or ip
    return key


class GroupedLabels(dict):
    """Labels keyed by address group (what ``grouped`` returns): grouping them again is a no-op."""


def grouped(labels: dict) -> GroupedLabels:
    """``labels`` keyed by address group; a group takes an attacker's label when it holds one. Labels already
    grouped come back as they are, so a sweep groups them once, not at every grid point."""
    if isinstance(labels, GroupedLabels):
        return labels
    out = GroupedLabels()
    for ip, label in labels.items():
        key = _key(ip)
        if key not in out or (label[0] == "attack" and out[key][0] != "attack"):
            out[key] = label
    return out


def confusion(flagged: Iterable[str], labels: dict, seen: Iterable[str]) -> dict:
    """Counts and rates for ``flagged`` among the addresses ``seen`` in the log (compared by address group)."""
    labels = grouped(labels)
    flagged = {_key(ip) for ip in flagged}
    seen = {_key(ip) for ip in seen}
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
    labels = grouped(labels)
    verdicts = {_key(ip): f for ip, f in verdicts.items()}
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


def curriculum_rules(rules: RuleSet, max_requests: int = 100) -> RuleSet:
    """The curriculum's full rule: more than ``max_requests`` requests in the hour, or any request for ``/admin`` or
    ``/login``. Path classes are fixed when a log is read, so replay with it: ``replay_file(path, rules=...)``."""
    return rules.only("volume", "sensitive_paths").with_params(
        {
            "volume.max_requests": max_requests,
            "volume.score": 1.0,
            "sensitive_paths.score": 1.0,
            "sensitive_paths.min_hits": 1,
            "sensitive_paths.min_status": 0,
            "sensitive_paths.paths": CURRICULUM_PATHS,
            "threshold": 0.5,
        }
    )


def by_population(result: ReplayResult, labels: dict, rules: RuleSet | None = None) -> list[dict]:
    """How many addresses (groups) of each population were flagged."""
    flagged = {_key(ip) for ip in (result.flagged if rules is None else result.rejudge(rules))}
    labels = grouped(labels)
    counts: dict[str, list[int]] = {}
    for ip in {_key(ip) for ip in _seen(result)}:
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
    labels = grouped(labels)
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
    labels = grouped(labels)
    return [
        {"threshold": t, **confusion({ip for ip, f in verdicts.items() if f.score >= t - 1e-9}, labels, seen)}
        for t in thresholds
    ]


def by_family(result: ReplayResult, labels: dict, rules: RuleSet | None = None) -> list[dict]:
    """Recall per attack family (the labels' ``family``, else the population): attackers present, caught, recall."""
    flagged = {_key(ip) for ip in (result.flagged if rules is None else result.rejudge(rules))}
    labels = grouped(labels)
    counts: dict[str, list[int]] = {}
    for ip in {_key(ip) for ip in _seen(result)}:
        label = labels.get(ip)
        if label is None or label[0] != "attack":
            continue
        family = (label[2] if len(label) > 2 and label[2] else label[1]) or "unknown"
        row = counts.setdefault(family, [0, 0])
        row[0] += 1
        row[1] += ip in flagged
    return [
        {"family": f, "attackers": n, "caught": c, "recall": c / n if n else 0.0}
        for f, (n, c) in sorted(counts.items())
    ]


def false_alarms(result: ReplayResult, labels: dict, rules: RuleSet | None = None) -> list[dict]:
    """Every benign (or unlabelled) address flagged: population, hard-benign mark, the rules and the reason."""
    flagged = result.flagged if rules is None else result.rejudge(rules)
    labels = grouped(labels)
    rows = []
    for ip, finding in sorted(flagged.items()):
        label = labels.get(_key(ip), ("benign", "unlabelled"))
        if label[0] == "attack":
            continue
        hard = bool(label[3]) if len(label) > 3 else False
        rows.append(
            {"ip": ip, "population": label[1], "hard_benign": hard, "rules": ", ".join(finding.rules),
             "score": round(finding.score, 3), "reasons": finding.reasons}
        )  # fmt: skip
    return rows


def strictness(params: dict) -> tuple:
    """How strict a setting is, for breaking ties (larger is stricter): a higher threshold, larger ``min_*`` and
    smaller ``max_*`` counts; other parameters (and ties) fall back to their names and values, never grid order."""
    key = [params.get("threshold", 0.0)]
    for name in sorted(params):
        if name == "threshold":
            continue
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        key.append(-value if name.rsplit(".", 1)[-1].startswith("max_") else value)
    return tuple(key)


def tune(result: ReplayResult, labels: dict, grid: dict[str, list]) -> tuple[dict, list[dict]]:
    """Sweep ``grid`` and choose by the stated criterion: the highest F1; among equal F1 (to 1e-9), fewer false
    alarms; then the strictest setting (``strictness``). Returns (the chosen parameters, every scored point)."""
    rows = sweep(result, labels, grid)
    best = max(rows, key=lambda r: (round(r["f1"], 9), -r["fp"], strictness({n: r[n] for n in grid})))
    return {name: best[name] for name in grid}, rows


def write_recommended(path, params: dict, *, note: str = "") -> Path:
    """Write ``params`` (``{"threshold": 0.6, "auth_failures.min_failures": 5}``) as a rules file that says only what
    it changes (laid over ``rules.yaml`` when loaded, so it stays valid as the defaults evolve), then load it back:
    a parameter the rules do not have is refused with ``RulesError`` naming it, and nothing is left written."""
    overlay: dict = {}
    for name, value in params.items():
        if "." in name:
            rule, _, key = name.partition(".")
            overlay.setdefault("rules", {}).setdefault(rule, {})[key] = value
        else:
            overlay[name] = value
    path = Path(path)
    header = "".join(f"# {line}\n" for line in note.splitlines())
    path.write_text(header + yaml.safe_dump(overlay, sort_keys=True, width=120), encoding="utf-8")
    try:
        load_rules(path)
    except RulesError:
        path.unlink()
        raise
    return path
