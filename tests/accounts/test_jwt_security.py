"""JWT hardening: every forged, expired, misused or revoked token gets a JSON 401 on a protected endpoint, and
nothing is written. Each forgery starts from the payload of a token the server really issued, so the only thing
wrong with it is the thing under test (the valid control gets 201 on the same request)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from types import SimpleNamespace

import jwt
import pytest
from django.conf import settings
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from nexus_backend.polls.models import Poll, Vote
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

POLLS = "/api/polls/"
NEW_POLL = {"question": "Tea or coffee?", "options": ["Tea", "Coffee"]}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(obj: dict) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def _payload(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _hmac_token(header: dict, payload: dict, key: str, digest=hashlib.sha256) -> str:
    """A token signed by hand, so the header can claim any algorithm whatever the signature really is."""
    signing_input = f"{_segment(header)}.{_segment(payload)}"
    signature = hmac.new(key.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def _tampered(token: str, **changes) -> str:
    """The same header and signature, the payload edited."""
    header, _, signature = token.split(".")
    return f"{header}.{_segment({**_payload(token), **changes})}.{signature}"


OTHER_KEY = "another-key-" + "x9Q" * 20
_DAY = 86_400

# What is wrong with the token -> how to make it from a genuine access token ``a`` (``a.token``, ``a.claims``,
# ``a.key`` the server's signing key, ``a.other_user_id``, ``a.now``).
FORGERIES = {
    "payload edited, signature kept": lambda a: _tampered(a.token, user_id=a.other_user_id),
    "lifetime extended, signature kept": lambda a: _tampered(a.token, exp=a.claims["exp"] + _DAY),
    "expired": lambda a: jwt.encode({**a.claims, "iat": a.now - 3600, "exp": a.now - 60}, a.key, algorithm="HS256"),
    "HS512 with the same key": lambda a: jwt.encode(a.claims, a.key, algorithm="HS512"),
    "HS384 with the same key": lambda a: jwt.encode(a.claims, a.key, algorithm="HS384"),
    "header says RS256, HMAC signature": lambda a: _hmac_token({"alg": "RS256", "typ": "JWT"}, a.claims, a.key),
    "header says HS512, HS256 signature": lambda a: _hmac_token({"alg": "HS512", "typ": "JWT"}, a.claims, a.key),
    "alg none, no signature": lambda a: f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(a.claims)}.",
    "alg None, no signature": lambda a: f"{_segment({'alg': 'None', 'typ': 'JWT'})}.{_segment(a.claims)}.",
    "alg none, signature kept": lambda a: f"{_segment({'alg': 'none'})}.{_segment(a.claims)}.{a.token.split('.')[2]}",
    "another key": lambda a: jwt.encode(a.claims, OTHER_KEY, algorithm="HS256"),
    "refresh token as access token": lambda a: str(RefreshToken.for_user(a.user)),
}


def _forge(kind: str, user, other_user) -> str:
    token = str(AccessToken.for_user(user))
    genuine = SimpleNamespace(
        token=token,
        claims=_payload(token),
        key=settings.SIMPLE_JWT["SIGNING_KEY"],
        user=user,
        other_user_id=str(other_user.pk),
        now=int(time.time()),
    )
    return FORGERIES[kind](genuine)


def _assert_json_401(response) -> dict:
    assert response.status_code == 401, response.content
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]  # the shape of core/exceptions.py
    assert body["code"] == "token_not_valid"
    return body


def test_the_algorithm_is_pinned_to_hs256_with_the_settings_key():
    assert settings.SIMPLE_JWT["ALGORITHM"] == api_settings.ALGORITHM == "HS256"
    assert api_settings.SIGNING_KEY == settings.SECRET_KEY
    assert api_settings.ACCESS_TOKEN_LIFETIME.total_seconds() <= 15 * 60
    assert api_settings.ROTATE_REFRESH_TOKENS and api_settings.BLACKLIST_AFTER_ROTATION


def test_a_genuine_token_is_accepted_on_the_same_request(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    response = api_client.post(POLLS, NEW_POLL, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["owner"] == user.pk


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_token_gets_401_and_creates_nothing(api_client, user, other_user, forgery):
    token = _forge(forgery, user, other_user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    _assert_json_401(api_client.post(POLLS, NEW_POLL, format="json"))
    assert not Poll.objects.filter(question=NEW_POLL["question"]).exists()


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_token_cannot_vote(api_client, user, other_user, poll, forgery):
    token = _forge(forgery, user, other_user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    option = poll.options.first()
    _assert_json_401(api_client.post(f"{POLLS}{poll.pk}/vote/", {"option": option.pk}, format="json"))
    assert not Vote.objects.filter(poll=poll).exists()


@pytest.mark.parametrize("forgery", ["expired", "HS512 with the same key", "alg none, no signature", "another key"])
def test_verify_endpoint_refuses_forgeries(api_client, user, other_user, forgery):
    token = _forge(forgery, user, other_user)
    _assert_json_401(api_client.post("/api/auth/token/verify/", {"token": token}, format="json"))


def test_the_expired_token_is_refused_for_its_expiry(api_client, user, other_user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {_forge('expired', user, other_user)}")
    body = _assert_json_401(api_client.post(POLLS, NEW_POLL, format="json"))
    assert "expired" in json.dumps(body["messages"]).lower()


def _login(api_client) -> dict:
    response = api_client.post("/api/auth/token/", {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_rotated_refresh_token_used_again_gets_401_and_the_new_one_works(api_client, user):
    first = _login(api_client)["refresh"]
    rotated = api_client.post("/api/auth/token/refresh/", {"refresh": first}, format="json")
    assert rotated.status_code == 200
    second = rotated.json()["refresh"]
    _assert_json_401(api_client.post("/api/auth/token/refresh/", {"refresh": first}, format="json"))
    again = api_client.post("/api/auth/token/refresh/", {"refresh": second}, format="json")
    assert again.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {again.json()['access']}")
    assert api_client.post(POLLS, NEW_POLL, format="json").status_code == 201


def test_a_logged_out_refresh_token_gets_401_everywhere(api_client, user):
    refresh = _login(api_client)["refresh"]
    assert api_client.post("/api/auth/logout/", {"refresh": refresh}, format="json").status_code == 205
    _assert_json_401(api_client.post("/api/auth/token/refresh/", {"refresh": refresh}, format="json"))
    _assert_json_401(api_client.post("/api/auth/token/verify/", {"token": refresh}, format="json"))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh}")
    _assert_json_401(api_client.post(POLLS, NEW_POLL, format="json"))
    assert not Poll.objects.exists()
