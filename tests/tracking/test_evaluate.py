"""Scoring helpers of notebook 02: address groups, the curriculum's rule, the stated tuning criterion and the
recommended-rules file."""

from __future__ import annotations

import pytest

from nexus_backend.tracking.detection.parsers import Record, format_combined
from nexus_backend.tracking.detection.replay import replay_file
from nexus_backend.tracking.detection.rules import RulesError, load_rules
from nexus_lab.detection import evaluate
from nexus_lab.traffic import Label

T0 = 1_740_960_000.0  # 2025-03-03 00:00 UTC


def write_log(tmp_path, records):
    path = tmp_path / "t.log"
    path.write_text("".join(format_combined(r, size=100) + "\n" for r in records))
    return path


def test_confusion_compares_ipv6_by_its_64():
    labels = {
        "2001:db8:1:2::10": Label("attack", "ipv6_rotation"),
        "2001:db8:1:2::11": Label("attack", "ipv6_rotation"),
        "198.51.100.1": Label("benign", "humans"),
    }
    seen = list(labels)
    by_address = evaluate.confusion(["2001:db8:1:2::10", "2001:db8:1:2::11"], labels, seen)
    by_group = evaluate.confusion(["2001:db8:1:2::/64"], labels, seen)
    assert by_address == by_group and by_group["tp"] == 1 and by_group["fn"] == 0 and by_group["tn"] == 1


def test_curriculum_rule_flags_one_login_hit_and_volume_but_nothing_else(tmp_path):
    browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0.0.0 Safari/537.36"
    records = [Record(T0 + 1, "198.51.100.1", "GET", "/login", 200, browser, "")]
    records += [Record(T0 + 2 + i, "198.51.100.2", "GET", f"/p/{i}", 200, browser, "") for i in range(101)]
    records += [Record(T0 + 2 + i, "198.51.100.3", "GET", f"/p/{i}", 200, browser, "") for i in range(100)]
    log = write_log(tmp_path, sorted(records))
    result = replay_file(log, rules=evaluate.curriculum_rules(load_rules(), 100))
    assert set(result.flagged) == {"198.51.100.1", "198.51.100.2"}


def test_tune_breaks_ties_by_the_stated_criterion_not_grid_order(tmp_path):
    scanner = "Mozilla/5.0 zgrab/0.x"
    records = [Record(T0 + i, f"198.51.100.{i}", "GET", "/.env", 404, scanner, "") for i in range(1, 6)]
    log = write_log(tmp_path, records)
    result = replay_file(log)
    labels = {f"198.51.100.{i}": Label("attack", "scanners") for i in range(1, 6)}
    grid = {"threshold": [0.3, 0.5, 0.6], "auth_failures.min_failures": [3, 8]}
    reversed_grid = {name: list(reversed(values)) for name, values in reversed(grid.items())}
    chosen, rows = evaluate.tune(result, labels, grid)
    assert len({round(r["f1"], 9) for r in rows}) == 1  # every point ties: only the criterion decides
    assert chosen == {"threshold": 0.6, "auth_failures.min_failures": 8}  # the strictest
    assert evaluate.tune(result, labels, reversed_grid)[0] == chosen


def test_write_recommended_writes_only_what_it_changes_and_refuses_an_unknown_parameter(tmp_path):
    path = evaluate.write_recommended(
        tmp_path / "r.yaml", {"threshold": 0.6, "auth_failures.min_failures": 7}, note="x"
    )
    text = path.read_text()
    assert text.startswith("# x\n") and "cms_probe" not in text
    rules = load_rules(path)
    assert rules.threshold == 0.6 and rules.rule("auth_failures")["min_failures"] == 7
    with pytest.raises(RulesError, match="min_failurez"):
        evaluate.write_recommended(tmp_path / "bad.yaml", {"auth_failures.min_failurez": 7})
    assert not (tmp_path / "bad.yaml").exists()
