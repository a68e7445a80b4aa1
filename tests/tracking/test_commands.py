"""``manage.py block_ip`` / ``unblock_ip``: what they change, and one-line errors for bad input."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from nexus_backend.tracking.models import BlockedIP

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_block_and_unblock_addresses_and_networks(web):
    out = run("block_ip", "203.0.113.7", "10.0.0.0/8", "2001:DB8::/32", "--reason", "scanner")
    assert out.splitlines() == [
        "blocked 203.0.113.7 until removed",
        "blocked 10.0.0.0/8 until removed",
        "blocked 2001:db8::/32 until removed",
    ]
    assert sorted(BlockedIP.objects.values_list("ip_address", "reason")) == [
        ("10.0.0.0/8", "scanner"),
        ("2001:db8::/32", "scanner"),
        ("203.0.113.7", "scanner"),
    ]
    assert web.get("/bench/bare/", REMOTE_ADDR="10.20.30.40").status_code == 403
    assert run("unblock_ip", "10.0.0.0/8").strip() == "unblocked 10.0.0.0/8"
    assert web.get("/bench/bare/", REMOTE_ADDR="10.20.30.40").status_code == 200


def test_block_for_a_while_or_until_a_time_and_again_updates():
    run("block_ip", "203.0.113.7", "--for", "2h")
    expires = BlockedIP.objects.get().expires_at
    assert timedelta(hours=1, minutes=59) < expires - timezone.now() <= timedelta(hours=2)
    out = run("block_ip", "203.0.113.7", "--until", "2099-01-31T18:00")
    assert out.startswith("updated 203.0.113.7 until 2099-01-31T18:00:00+00:00")
    assert BlockedIP.objects.count() == 1


def test_list_shows_active_blocks():
    run("block_ip", "203.0.113.7", "--for", "1h")
    run("block_ip", "198.51.100.0/24")
    BlockedIP.objects.create(ip_address="192.0.2.1", expires_at=timezone.now() - timedelta(minutes=1))
    lines = run("block_ip", "--list").splitlines()
    assert lines[0].startswith("198.51.100.0/24") and lines[0].endswith("no expiry")
    assert lines[1].startswith("203.0.113.7") and "until" in lines[1]
    assert lines[-1] == "2 active block(s)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["block_ip", "banana"], "banana: 'banana' is not an IP address or CIDR network"),
        (["block_ip", "10.0.0.5/8"], "10.0.0.5/8: '10.0.0.5/8' has host bits set; did you mean 10.0.0.0/8?"),
        (["block_ip", "0.0.0.0/0"], "0.0.0.0/0: 0.0.0.0/0 covers 4,294,967,296 addresses"),
        (["block_ip", "300.1.1.1"], "is not an IP address or CIDR network"),
        (["block_ip", "203.0.113.7", "--for", "soon"], "--for: 'soon' is not a duration like 90s"),
        (["block_ip", "203.0.113.7", "--for", "0m"], "--for: '0m' is not a duration"),
        (["block_ip", "203.0.113.7", "--until", "tomorrow"], "--until: 'tomorrow' is not a date and time"),
        (["block_ip", "203.0.113.7", "--until", "2001-01-01T00:00"], "The expiry is in the past"),
        (["block_ip"], "give at least one address or network"),
        (["unblock_ip", "203.0.113.8"], "203.0.113.8: 203.0.113.8 is not blocked."),
        (["unblock_ip", "nope"], "nope: 'nope' is not an IP address or CIDR network"),
    ],
)
def test_bad_input_is_a_clear_error(args, message):
    with pytest.raises(CommandError) as exc:
        run(*args)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)
    assert BlockedIP.objects.count() == 0


def test_a_broad_network_needs_allow_broad():
    run("block_ip", "96.0.0.0/6", "--allow-broad")
    assert BlockedIP.objects.get().ip_address == "96.0.0.0/6"


def test_on_the_command_line_an_error_is_one_line_without_traceback():
    proc = subprocess.run(
        [sys.executable, "manage.py", "block_ip", "10.0.0.5/8"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "CommandError: 10.0.0.5/8: '10.0.0.5/8' has host bits set; did you mean 10.0.0.0/8?"
