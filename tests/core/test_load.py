"""``manage.py load --quick`` against the real services: a real gunicorn (request logging on, one trusted proxy),
the real rate limits, block list and detector, locust clients in subprocesses.

Counts only, never timings (docs/benchmarks.md): normal users got no error in either phase, every attacker class was
limited (429), blocked (403 from the block list) or flagged, the request log holds every request the clients
saw answered, and the run removed what it made.
"""

from __future__ import annotations

import io
import json
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from nexus_backend.tracking.models import BlockedIP, SuspiciousIP
from nexus_lab import load


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(420)
def test_quick_load_with_abuse_normal_users_unharmed_attackers_caught(tmp_path):
    out = io.StringIO()
    json_path = tmp_path / "load.json"
    failed = None
    try:
        call_command(
            "load",
            "--quick",
            "--json",
            str(json_path),
            "--results-dir",
            str(tmp_path / "results"),
            stdout=out,
            stderr=io.StringIO(),
        )
    except CommandError as exc:  # a failed verdict: the results are saved first, the asserts below say which
        failed = str(exc)
    print(out.getvalue())  # the table, shown when the test fails
    result = json.loads(json_path.read_text())
    assert [p.name.startswith("load-") for p in (tmp_path / "results").iterdir()] == [True]
    assert set(result["phases"]) == {"baseline", "attack"}
    assert set(result["phases"]["baseline"]["classes"]) == {"normal"}
    assert set(result["phases"]["attack"]["classes"]) == set(load.CLASSES)

    for name, phase in result["phases"].items():
        normal = phase["classes"]["normal"]
        assert normal["requests"] > 0, name
        assert normal["ok_2xx"] == normal["requests"], (name, normal["statuses"])  # no 4xx, 5xx, network error
        assert normal["errors"] == 0 and normal["flagged_addresses"] == [] and normal["blocked_addresses"] == []
        # Every answer a client saw was logged under the address it claimed (X-Forwarded-For, one trusted proxy);
        # requests cut off when the clients stopped may add a few the clients never saw.
        seen = sum(c["requests"] for c in phase["classes"].values())
        assert phase["request_logs"] >= seen, name
        assert not phase["detector_errors"], phase["detector_errors"]
    logins = Counter(result["normal_by_request"]["attack"]["POST /api/auth/token/"])
    assert logins["200"] >= 1 and set(logins) == {"200"}  # stuffing their usernames did not lock them out

    attack = result["phases"]["attack"]["classes"]
    for cls in load.ATTACKERS:
        row = attack[cls]
        assert row["requests"] > 0, cls
        assert row["server_5xx"] == 0, (cls, row["statuses"])
        caught = row["limited_429"] + row["blocked_403"] + len(row["flagged_addresses"] + row["blocked_addresses"])
        assert caught > 0, (cls, row)
        assert result["verdicts"]["attackers_caught"][cls], cls
    assert result["verdicts"]["normal_users_no_errors"] is True
    assert result["verdicts"]["every_attacker_class_caught"] is True
    assert failed is None, failed
    assert isinstance(result["verdicts"]["p95_ratio_attack_over_baseline"], float)  # measured, not judged here

    text = out.getvalue()
    assert "normal users see no errors (no 5xx, no 4xx, no network error, both phases): yes" in text
    assert "normal users' p95 with attackers / without: x" in text
    for cls in load.ATTACKERS:
        assert f"attack    {cls}" in text

    # The run cleaned up after itself: no account, finding or block of its addresses is left.
    addresses = load.planned_addresses()
    assert not get_user_model().objects.filter(username__startswith=load.PREFIX).exists()
    assert not BlockedIP.objects.filter(ip_address__in=addresses).exists()
    assert not SuspiciousIP.objects.filter(ip_address__in=addresses).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--think", "5,1"], "--think must be MIN,MAX"),
        (["--think", "fast"], "--think must be MIN,MAX"),
        (["--users", "0"], "--users must be between 1 and 250"),
        (["--duration", "1"], "--duration must be between 5 and 3600"),
        (["--attack-scale", "0"], "--attack-scale must be above 0"),
        (["--stuffer-ips", "9"], "--stuffer-ips must be between 1 and 5"),
        (["--detect-every", "500", "--duration", "60"], "--detect-every must be 0"),
    ],
)
def test_bad_options_are_one_line_errors(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("load", *args, stdout=io.StringIO())


def _row(cls: str, statuses: dict, ips=("203.0.113.9",), flagged=(), blocked=()) -> dict:
    latencies = [10.0] * sum(statuses.values())
    return load._class_row(cls, latencies, Counter(statuses), list(ips), set(flagged), set(blocked))


def test_a_normal_users_4xx_is_an_error_an_attackers_is_not():
    normal = _row("normal", {"200": 98, "429": 1, "403-blocked": 1})
    assert (normal["errors"], normal["limited_429"], normal["blocked_403"], normal["client_4xx"]) == (2, 1, 1, 2)
    attacker = _row("scanner", {"404": 50, "403-blocked": 30, "502": 1, "error:ConnectionError": 1})
    assert (attacker["errors"], attacker["server_5xx"], attacker["network_errors"]) == (2, 1, 1)
    assert attacker["client_4xx"] == 80 and attacker["blocked_403"] == 30


def test_verdicts_need_every_attacker_class_caught_and_no_normal_error():
    clean = {
        "baseline": {"normal": _row("normal", {"200": 10})},
        "attack": {
            "normal": _row("normal", {"200": 10}),
            "credential_stuffing": _row("credential_stuffing", {"401": 5, "429": 20}),
            "vote_stuffing": _row("vote_stuffing", {"201": 5}, flagged=("203.0.113.9",)),
            "scanner": _row("scanner", {"404": 3, "403-blocked": 9}),
        },
    }
    v = load._verdicts(clean)
    assert v["normal_users_no_errors"] and v["every_attacker_class_caught"] and v["p95_ratio_attack_over_baseline"]
    assert v["attackers_caught"] == {
        "credential_stuffing": ["limited"],
        "vote_stuffing": ["flagged"],
        "scanner": ["blocked"],
    }
    assert load.passed({"verdicts": v})

    clean["attack"]["scanner"] = _row("scanner", {"404": 12})  # nothing stopped it
    v = load._verdicts(clean)
    assert v["attackers_caught"]["scanner"] == [] and not v["every_attacker_class_caught"]
    assert not load.passed({"verdicts": v})

    clean["attack"]["scanner"] = _row("scanner", {"404": 3, "403-blocked": 9})
    clean["baseline"]["normal"] = _row("normal", {"200": 9, "500": 1})
    assert not load._verdicts(clean)["normal_users_no_errors"]
