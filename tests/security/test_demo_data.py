"""Demo data stays demo data (finding: ``seed_demo`` ran with NEXUS_ENV=production, the published demo password
logged in, and a real user named ``demo_alice`` lost everything to the seed).

Seeding and resetting demo data are refused in production with one line; the seed removes only users it named
itself (``demo_user001`` ...); sign-up refuses the prefixes generated data lives under."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from nexus_backend.polls import services
from nexus_backend.polls.demo import DemoRefused, demo_reset, demo_seed
from nexus_backend.polls.models import Poll
from tests.core.test_production_settings import _production_env
from tests.security.conftest import ROOT, call

User = get_user_model()


@pytest.mark.django_db(transaction=True)
def test_seed_demo_is_refused_in_production_with_one_line():
    test_db = str(connections["default"].settings_dict["NAME"])
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--users", "2", "--polls", "1"],
        cwd=ROOT,
        env=_production_env(NEXUS_DB_NAME=test_db),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "demo seeding is refused with NEXUS_ENV=production" in lines[0], result.stderr
    assert not User.objects.filter(username__startswith="demo_").exists()


@pytest.mark.django_db
def test_seed_and_reset_are_refused_in_production_in_process(settings):
    settings.PRODUCTION = True
    with pytest.raises(DemoRefused):
        demo_seed(users=2, polls=1)
    with pytest.raises(DemoRefused):
        demo_reset(prefix="demo_")


@pytest.mark.django_db
def test_the_seed_never_deletes_a_user_it_did_not_create(make_user):
    alice = make_user("demo_alice")  # made before the prefix was reserved, or by an admin
    her_poll = services.poll_create(owner=alice, question="Mine?", options=["a", "b"])
    demo_seed(seed=1, polls=2, users=4)
    demo_seed(seed=2, polls=1, users=2)  # rebuilt smaller: seeded users and polls beyond it go
    assert User.objects.filter(pk=alice.pk).exists() and Poll.objects.filter(pk=her_poll.pk).exists()
    assert sorted(User.objects.filter(username__startswith="demo_").values_list("username", flat=True)) == [
        "demo_alice",
        "demo_user001",
        "demo_user002",
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("username", ["demo_alice", "DEMO_admin", "bench_user001"])
def test_sign_up_refuses_reserved_prefixes(web, username):
    signup = {"username": username, "email": "x@example.com", "password": "a-long-passphrase-for-tests-9"}
    status, _, body = call(web.port, "POST", "/api/auth/register/", signup)
    assert status == 400 and "username" in body, body
    assert not User.objects.filter(username__iexact=username).exists()


@pytest.mark.django_db(transaction=True)
def test_sign_up_with_an_ordinary_name_still_works(web):
    signup = {"username": "alice_demo", "email": "x@example.com", "password": "a-long-passphrase-for-tests-9"}
    status, _, body = call(web.port, "POST", "/api/auth/register/", signup)
    assert status == 201, body


def test_production_reserves_the_tour_prefix_too():
    probe = "from django.conf import settings; print(','.join(settings.NEXUS_RESERVED_USERNAME_PREFIXES))"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", probe],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip().splitlines()[-1] == "demo_,tour_,bench_", result.stderr
