"""Accounts over HTTP: register, JWT obtain / refresh / verify, logout (blacklist)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

REGISTER = "/api/auth/register/"
TOKEN = "/api/auth/token/"
REFRESH = "/api/auth/token/refresh/"
VERIFY = "/api/auth/token/verify/"
LOGOUT = "/api/auth/logout/"


def _tokens(api_client, username="alice", password=PASSWORD) -> dict:
    response = api_client.post(TOKEN, {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_register_creates_a_user_and_never_echoes_the_password(api_client):
    response = api_client.post(
        REGISTER, {"username": "carol", "email": "carol@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "username", "email"}
    user = get_user_model().objects.get(pk=body["id"])
    assert (user.username, user.email) == ("carol", "carol@example.com")
    assert user.check_password(PASSWORD)
    assert _tokens(api_client, "carol")["access"]


def test_register_refuses_a_taken_username_whatever_its_case(api_client, user):
    response = api_client.post(
        REGISTER, {"username": "ALICE", "email": "a2@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "already exists" in body["username"][0]
    assert get_user_model().objects.filter(username__iexact="alice").count() == 1


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("12345678", "numeric"),
        ("password", "too common"),
        ("xY1!", "too short"),
        ("dave-the-user", "similar"),
    ],
)
def test_register_refuses_weak_passwords_with_the_validators_message(api_client, password, fragment):
    response = api_client.post(
        REGISTER,
        {"username": "dave-the-user", "email": "dave@example.com", "password": password},
        format="json",
    )
    assert response.status_code == 400
    assert fragment in response.json()["password"][0]
    assert not get_user_model().objects.filter(username="dave-the-user").exists()


def test_register_reports_every_bad_field(api_client):
    response = api_client.post(REGISTER, {"username": "no spaces!", "email": "not-an-email"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert {"username", "email", "password"} <= set(body)
    assert body["password"] == ["This field is required."]


def test_register_with_malformed_json_is_a_400_not_a_500(api_client):
    response = api_client.post(REGISTER, data='{"username": "x",', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_token_pair_for_good_credentials_and_401_for_bad(api_client, user):
    tokens = _tokens(api_client)
    assert set(tokens) == {"access", "refresh"}
    response = api_client.post(TOKEN, {"username": "alice", "password": "wrong"}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "no_active_account"


def test_access_token_authenticates_api_requests(api_client, user):
    access = _tokens(api_client)["access"]
    payload = {"question": "Tea or coffee?", "options": ["Tea", "Coffee"]}
    assert api_client.post("/api/polls/", payload, format="json").status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    response = api_client.post("/api/polls/", payload, format="json")
    assert response.status_code == 201
    assert response.json()["owner"] == user.pk


def test_refresh_rotates_and_blacklists_the_old_refresh_token(api_client, user):
    tokens = _tokens(api_client)
    response = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert response.status_code == 200
    fresh = response.json()
    assert fresh["access"] and fresh["refresh"] != tokens["refresh"]
    again = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert again.status_code == 401
    assert again.json()["code"] == "token_not_valid"


def test_verify_accepts_a_valid_token_and_rejects_garbage(api_client, user):
    tokens = _tokens(api_client)
    assert api_client.post(VERIFY, {"token": tokens["access"]}, format="json").status_code == 200
    response = api_client.post(VERIFY, {"token": "not.a.jwt"}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"
    assert api_client.post(VERIFY, {}, format="json").status_code == 400


def test_logout_blacklists_the_refresh_token(api_client, user):
    tokens = _tokens(api_client)
    response = api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")
    assert response.status_code == 205
    assert response.content == b""
    assert BlacklistedToken.objects.filter(token__user=user).count() == 1
    refused = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert refused.status_code == 401
    assert api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json").status_code == 401


def test_logout_refuses_an_access_token_or_garbage(api_client, user):
    tokens = _tokens(api_client)
    assert api_client.post(LOGOUT, {"refresh": tokens["access"]}, format="json").status_code == 401
    assert api_client.post(LOGOUT, {"refresh": "garbage"}, format="json").status_code == 401
    assert api_client.post(LOGOUT, {}, format="json").status_code == 400
    assert BlacklistedToken.objects.count() == 0
