"""No committed secret signs anything (finding: development signed JWTs with a key committed in the former
settings.py, and compose defaulted to another; a token forged with it got 200 on staff-only metrics and deleted
another user's poll).

Development makes a random key on first use in the git-ignored state folder; compose takes its key from .env,
which ``make env`` writes with fresh values. Here every string committed to the repository is tried as the signing
key of a forged token: the plausible ones over HTTP against a real gunicorn, all of them through the same JWT
authentication in-process. Every one is refused, while a token signed with the key really in use is accepted."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import jwt
import pytest
from django.conf import settings
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIRequestFactory
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.tokens import AccessToken

from nexus_backend.infra.embedded import development_secret_key
from tests.security.conftest import ROOT, call

PLACEHOLDERS = [  # the keys earlier versions committed (the former settings.py, docker-compose.yml)
    "dev-only-insecure-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz",
    "compose-dev-only-insecure-key-change-me-0123456789abcdefghijklmnop",
]
SECRET_NAMES = r"[A-Z_]*(?:KEY|SECRET|TOKEN|PASSWORD|PASS)[A-Z_]*"


def committed_strings() -> tuple[set[str], set[str]]:
    """(every run of 8+ key-like characters or quoted string in a tracked text file, the plausible keys among them:
    values assigned to *KEY/*SECRET/*TOKEN/*PASSWORD names and quoted strings that mention a key or secret)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    everything: set[str] = set(PLACEHOLDERS)
    plausible: set[str] = set(PLACEHOLDERS)
    for name in filter(None, files.stdout.split("\0")):
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        everything.update(re.findall(r"[A-Za-z0-9_\-+/=.~!@#$%^&*]{8,}", text))
        quoted = re.findall(r"""["'`]([^"'`\n]{8,200})["'`]""", text)
        everything.update(quoted)
        plausible.update(q for q in quoted if re.search(r"key|secret|insecure|token", q, re.IGNORECASE))
        for value in re.findall(rf"\b{SECRET_NAMES}\s*[=:]\s*[\"']?([^\s\"',}}]+)", text):
            plausible.add(value)
            everything.add(value)
    return everything, plausible


def forge(key: str, user_id: int) -> str:
    """An access token for ``user_id`` shaped exactly like the server's own, signed with ``key``."""
    claims = dict(AccessToken().payload)  # type, exp, iat, jti as simplejwt makes them
    claims["user_id"] = str(user_id)
    return jwt.encode(claims, key, algorithm="HS256")


@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore:The HMAC key is")  # PyJWT warns about the short strings tried as keys
def test_a_token_signed_with_any_committed_string_is_refused(web, make_user):
    victim = make_user("victim", is_staff=True)
    everything, plausible = committed_strings()
    assert len(plausible) >= 20 and len(everything) > 1000  # the scan really read the repository
    assert settings.SECRET_KEY not in everything  # the key in use is not committed anywhere

    # Control: the same forgery with the key the server really uses is accepted (400: the empty poll is invalid).
    status, _, body = call(
        web.port, "POST", "/api/polls/", {}, {"Authorization": f"Bearer {forge(settings.SECRET_KEY, victim.pk)}"}
    )
    assert status == 400, body

    accepted = []
    for key in sorted(plausible):
        status, _, body = call(
            web.port, "POST", "/api/polls/", {}, {"Authorization": f"Bearer {forge(key, victim.pk)}"}
        )
        if status != 401 or body.get("code") != "token_not_valid":
            accepted.append((key, status))
    assert accepted == []

    # Every other committed string, through the same authentication class the server runs.
    request = APIRequestFactory().get("/")
    authenticate = JWTAuthentication().authenticate
    passed = []
    for key in everything - plausible:
        request.META["HTTP_AUTHORIZATION"] = f"Bearer {forge(key, victim.pk)}"
        try:
            authenticate(request)
            passed.append(key)
        except AuthenticationFailed:
            pass
    assert passed == []


def test_the_development_key_is_random_private_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("NEXUS_STATE_DIR", str(tmp_path / "one"))
    first = development_secret_key()
    key_file = tmp_path / "one" / "secret_key"
    assert len(first) >= 50 and key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert development_secret_key() == first  # every later process of this checkout signs with the same key
    monkeypatch.setenv("NEXUS_STATE_DIR", str(tmp_path / "two"))
    assert development_secret_key() != first  # another checkout, another key
    key_file.write_text("cut")  # a file cut short is replaced, not used
    monkeypatch.setenv("NEXUS_STATE_DIR", str(tmp_path / "one"))
    assert len(development_secret_key()) >= 50


def test_the_state_folder_key_is_git_ignored():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".nexus/secret_key"], cwd=ROOT)
    assert ignored.returncode == 0


@pytest.mark.parametrize("key", PLACEHOLDERS)
def test_a_published_placeholder_is_refused_in_development_too(key):
    env = {k: v for k, v in os.environ.items() if k != "NEXUS_ENV"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=dict(env, SECRET_KEY=key), capture_output=True, text=True
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: SECRET_KEY is a published placeholder"), result.stderr


def test_make_env_writes_fresh_secrets_and_keeps_existing_ones(tmp_path):
    target = tmp_path / ".env"
    names = ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "RABBITMQ_PASSWORD", "JUPYTER_TOKEN")

    def values() -> dict[str, str]:
        return dict(re.findall(rf"^({'|'.join(names)})=(.*)$", target.read_text(), flags=re.MULTILINE))

    run = [sys.executable, str(ROOT / "scripts" / "make_env.py"), str(target)]
    subprocess.run(run, check=True, capture_output=True)
    first = values()
    assert set(first) == set(names) and all(len(v) >= 32 for v in first.values())
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    subprocess.run(run, check=True, capture_output=True)
    assert values() == first  # a second run changes no password a deployment already uses
    other = tmp_path / "other.env"
    subprocess.run([*run[:2], str(other)], check=True, capture_output=True)
    target = other
    assert not set(values().values()) & set(first.values())  # fresh values each time, never a default
