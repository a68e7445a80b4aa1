"""The hourly task (over ``RequestLog``) and ``manage.py replay_log`` (over a log file) run the same rules: the
same requests, fed through both, give the same verdicts, down to the rules, the score and the IPv6 /64 key."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from nexus_backend.tracking.detection import database
from nexus_backend.tracking.detection.parsers import open_log
from nexus_backend.tracking.detection.replay import replay_file, request_log_load
from nexus_backend.tracking.detection.rules import load_rules
from nexus_backend.tracking.detection.services import detect_window
from nexus_backend.tracking.models import SuspiciousIP

from .test_detect_families import ATTACKS, BACKGROUND, BENIGN


@pytest.fixture
def family_log(tmp_path):
    lines = list(BACKGROUND)
    for _, attack_lines, _, _ in ATTACKS:
        lines += attack_lines
    for _, make, _ in BENIGN:
        lines += make()
    path = tmp_path / "families.log"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.django_db
def test_the_hourly_task_and_replay_give_the_same_verdicts(family_log, tmp_path):
    replayed = replay_file(family_log)
    assert replayed.stats.malformed == 0
    assert len(replayed.flagged) >= len(ATTACKS)  # every attack address (the login campaign is not in ATTACKS)
    request_log_load(open_log(family_log))
    start = datetime(2025, 3, 3, 10, tzinfo=UTC)
    result = detect_window(start=start, end=start + timedelta(hours=1), auto_block=False)
    assert result.flagged_ips == sorted(replayed.flagged)
    rows = {r.ip_address: r for r in SuspiciousIP.objects.all()}
    assert set(rows) == set(replayed.flagged)
    for ip, f in replayed.flagged.items():
        assert rows[ip].rules == sorted(f.rules) and rows[ip].score == pytest.approx(f.score)
        assert rows[ip].evidence == f.evidence
    assert "2001:db8:5:6::/64" in rows  # an IPv6 client is kept as its /64
    # and the command writes those verdicts
    out = tmp_path / "flagged.csv"
    call_command("replay_log", str(family_log), "--out", str(out), "--no-progress")
    written = list(csv.DictReader(out.open()))
    assert {r["group"] for r in written} == set(rows)
    six = {r["ip"] for r in written if r["group"] == "2001:db8:5:6::/64"}
    assert six == {f"2001:db8:5:6::{i}" for i in range(1, 7)}


def test_explain_shows_the_requests_behind_a_verdict(family_log, tmp_path, capsys):
    out = tmp_path / "flagged.csv"
    call_command("replay_log", str(family_log), "--out", str(out), "--explain", "2001:db8:5:6::3")
    printed = capsys.readouterr().out
    assert "2001:db8:5:6::/64: FLAGGED" in printed and "agent_rotation" in printed
    assert "requests: 6" in printed and "GET /p3/ 404" in printed
    call_command("replay_log", str(family_log), "--out", str(out), "--explain", "203.0.114.1")
    assert "203.0.114.1: in the log, tripped no rule" in capsys.readouterr().out


@pytest.mark.django_db
def test_reading_the_window_in_slices_gives_the_aggregates_of_one_statement(family_log, monkeypatch):
    """``database.aggregate_request_log`` reads the window in time slices (the server groups one while Python
    classifies the other): groups cut by a slice boundary add up to what one statement over the whole window gives,
    down to every count, set, first and last time and example."""
    request_log_load(open_log(family_log))
    start = datetime(2025, 3, 3, 10, tzinfo=UTC)
    rules = load_rules()

    def aggregates(slices):
        monkeypatch.setattr(database, "SLICES", slices)
        agg = database.aggregate_request_log(start=start, end=start + timedelta(hours=1), rules=rules)
        return {key: s.to_json() for key, s in agg.stats.items()}

    whole = aggregates(1)
    cut = [r for r in replay_file(family_log).aggregator.stats.values() if r.first < start.timestamp() + 900 < r.last]
    assert len(cut) >= 5  # addresses active on both sides of the first boundary (10:15): the test is about them
    for slices in (2, 4, 7):
        assert aggregates(slices) == whole
