"""Production settings (NEXUS_ENV=production): refuses to start without its secrets, passes `check --deploy` with no
warnings, answers with the security headers, trusts X-Forwarded-Proto only behind a proxy, and moves the admin.

The settings are read once per process, so each production configuration runs in a `manage.py` subprocess with
its own environment (every variable under test set explicitly, so a developer's .env cannot leak in).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.checks.security.base import check_secret_key
from django.db import connection
from django.test import override_settings

from nexus_backend import settings as nexus_settings
from tests.service_urls import service_urls

ROOT = Path(__file__).resolve().parents[2]
HOST = "polls.example.org"
STRONG_KEY = secrets.token_urlsafe(50)
METRICS_TOKEN = secrets.token_urlsafe(24)


def _production_env(**overrides: str) -> dict[str, str]:
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="nexus_backend.settings",
        NEXUS_ENV="production",
        SECRET_KEY=STRONG_KEY,
        DEBUG="",
        ALLOWED_HOSTS=HOST,
        CSRF_TRUSTED_ORIGINS=f"https://{HOST}",
        SECURE_SSL_REDIRECT="",
        SECURE_HSTS_SECONDS="",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="",
        SECURE_HSTS_PRELOAD="",
        NEXUS_TRUSTED_PROXIES="0",
        NEXUS_PROXY_SSL_HEADER="",
        NEXUS_ADMIN_PATH="",
        NEXUS_REQUEST_LOGGING="off",  # the subprocess's requests stay out of the shared request-log stream
        PYTHONDONTWRITEBYTECODE="1",
        **service_urls(),  # production never starts the embedded servers (test_production_needs_service_urls)
    )
    # Set in this process once a test imports the notebook bootstrap (Jupyter needs it); never in a deployment,
    # and check --deploy refuses it (async.E001).
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(overrides)
    return env


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_production_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


# --------------------------------------------------------------------------- refusing to start


def test_production_without_secret_key_exits_with_one_line_that_says_what_to_set():
    result = _manage("check", SECRET_KEY="")
    assert result.returncode == 3
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: NEXUS_ENV=production refuses to start: SECRET_KEY is not set (set it to")
    assert "secrets.token_urlsafe(50)" in lines[0]
    assert result.stdout == ""


def test_every_refusal_is_named_on_the_same_single_line():
    result = _manage("check", SECRET_KEY="short-key", DEBUG="true", ALLOWED_HOSTS="")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "SECRET_KEY is too weak (9 characters" in line
    assert "unset DEBUG or set DEBUG=false" in line
    assert "set ALLOWED_HOSTS to" in line


def test_gunicorn_stops_instead_of_respawning_workers_that_refuse_to_start():
    """Exit status 3 is gunicorn's "worker failed to boot": the master halts rather than looping."""
    result = subprocess.run(
        # One worker: with several, gunicorn 27 reaps a second failed worker while halting and exits 1 (still halted).
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "nexus_backend.wsgi:application",
            "-b",
            "127.0.0.1:0",
            "-w",
            "1",
        ],
        cwd=ROOT,
        env=_production_env(SECRET_KEY=""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3
    assert "Worker failed to boot" in result.stderr
    assert result.stderr.count("error: NEXUS_ENV=production refuses to start: SECRET_KEY is not set") == 1


def test_production_needs_service_urls_and_never_starts_the_embedded_servers(tmp_path):
    state = tmp_path / "state"  # where the embedded servers would keep their data, sockets and pidfiles
    result = _manage("check", DATABASE_URL="", REDIS_URL=" ", CELERY_BROKER_URL="", NEXUS_STATE_DIR=str(state))
    assert result.returncode == 3
    assert "Traceback" not in result.stderr and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        "error: NEXUS_ENV=production refuses to start: DATABASE_URL, REDIS_URL, CELERY_BROKER_URL are not set"
    )
    assert "never starts the embedded servers" in line
    assert not state.exists()  # refused before anything was started or written

    [line] = _manage("check", REDIS_URL="", NEXUS_STATE_DIR=str(state)).stderr.strip().splitlines()
    assert line.startswith("error: NEXUS_ENV=production refuses to start: REDIS_URL is not set (production never")
    assert not state.exists()


def test_a_misspelt_nexus_env_is_refused_not_taken_for_development():
    result = _manage("check", NEXUS_ENV="prod")
    assert result.returncode != 0
    assert result.stderr.strip() == "error: NEXUS_ENV must be development or production, got 'prod'"


def _problems(**kw):
    args = {"secret_key": STRONG_KEY, "debug": False, "allowed_hosts": [HOST]} | kw
    return nexus_settings.production_problems(**args)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "x" * 49,  # too short for check --deploy
        "ab" * 40,  # long, but 2 distinct characters
        "django-insecure-" + secrets.token_urlsafe(50),  # startproject's placeholder prefix
        "dev-only-insecure-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz",  # this project's development key
        "compose-dev-only-insecure-key-change-me-0123456789abcdefghijklmnop",  # docker-compose.yml's default
    ],
)
def test_weak_or_placeholder_keys_are_refused(key):
    [problem] = _problems(secret_key=key)
    assert problem.startswith("SECRET_KEY ")
    assert "secrets.token_urlsafe(50)" in problem


@pytest.mark.parametrize(
    "key", ["", "x" * 49, "ab" * 40, "django-insecure-" + "k" * 60, "0123456789" * 5, STRONG_KEY, "Q7" + "z" * 60]
)
def test_every_key_check_deploy_flags_is_refused(key):
    """The refusal is at least as strict as Django's own rule (security.W009), so a key that starts passes it."""
    with override_settings(SECRET_KEY=key or "placeholder"):
        flagged_by_django = bool(check_secret_key(None)) if key else True
    refused = any(p.startswith("SECRET_KEY") for p in _problems(secret_key=key))
    assert refused or not flagged_by_django


def test_a_strong_key_with_hosts_and_no_debug_has_no_problems():
    assert _problems() == []
    assert _problems(debug=True) == [
        "DEBUG is true (unset DEBUG or set DEBUG=false: debug pages show settings and code)"
    ]
    assert _problems(allowed_hosts=[]) == [
        "ALLOWED_HOSTS is empty (set ALLOWED_HOSTS to the comma-separated host names served)"
    ]


# --------------------------------------------------------------------------- check --deploy


def test_check_deploy_is_clean_in_production():
    result = _manage("check", "--deploy")
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, output
    assert "WARNINGS" not in output and "ERRORS" not in output
    assert "System check identified some issues" not in output
    assert "System check identified no issues (0 silenced)." in output


def test_check_deploy_notices_when_production_hardening_is_switched_off():
    """The clean run above is not a check that never warns: turning HSTS and the redirect off is reported."""
    result = _manage("check", "--deploy", SECURE_HSTS_SECONDS="0", SECURE_SSL_REDIRECT="false")
    output = result.stdout + result.stderr
    assert "security.W004" in output and "security.W008" in output


def test_development_keeps_plain_http():
    assert not settings.PRODUCTION
    assert settings.SESSION_COOKIE_SECURE is False and settings.CSRF_COOKIE_SECURE is False
    assert settings.SECURE_SSL_REDIRECT is False and settings.SECURE_HSTS_SECONDS == 0
    assert settings.SECURE_PROXY_SSL_HEADER is None
    assert settings.NEXUS_ADMIN_PATH == "admin/"


# --------------------------------------------------------------------------- what production answers

_PROBE = """
import json
from django.contrib.auth import get_user_model
from django.test import Client

def probe(client, path, **extra):
    response = client.get(path, **extra)
    return {"status": response.status_code, "location": response.get("Location"),
            "headers": {k: response.get(k) for k in ("Strict-Transport-Security", "X-Frame-Options",
                        "X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy",
                        "Content-Security-Policy")}}

client = Client(HTTP_HOST="%(host)s")
out = {
    "http": probe(client, "/api/nowhere/"),
    "http_forwarded_https": probe(client, "/api/nowhere/", HTTP_X_FORWARDED_PROTO="https"),
    "https": probe(client, "/api/nowhere/", secure=True),
    "health_http": probe(client, "/health/"),
    "health_body": sorted(json.loads(client.get("/health/").content)),
    "health_body_operator": sorted(json.loads(client.get("/health/", HTTP_AUTHORIZATION="Bearer %(token)s").content)),
    "bare": probe(client, "/bench/bare/", secure=True),
    "admin_moved": probe(client, "/%(admin)s", secure=True),
    "admin_old": probe(client, "/admin/", secure=True),
    "admin_old_login": probe(client, "/admin/login/", secure=True),
    "graphiql": probe(client, "/graphql/", secure=True, HTTP_ACCEPT="text/html"),
    "docs": probe(client, "/api/docs/", secure=True),
    "introspection": json.loads(client.post("/graphql/", {"query": "{ __schema { types { name } } }"},
                                content_type="application/json", secure=True).content),
}
get_user_model().objects.create_superuser("root", "root@example.com", "a-long-admin-password-9")
login = client.post("/%(admin)slogin/", {"username": "root", "password": "a-long-admin-password-9",
                    "next": "/%(admin)s"}, secure=True)
index = client.get("/%(admin)s", secure=True)
out["admin_index"] = {"login": login.status_code, "status": index.status_code,
                      "site_admin": b"Site administration" in index.content,
                      "secure_cookie": bool(login.cookies["sessionid"]["secure"])}
out["admin_old_logged_in"] = probe(client, "/admin/", secure=True)
print(json.dumps(out))
"""


def _probe(**env: str) -> dict:
    admin = env.get("NEXUS_ADMIN_PATH") or "admin/"
    result = _manage(
        "shell",
        "-c",
        _PROBE % {"host": HOST, "admin": admin, "token": METRICS_TOKEN},
        NEXUS_DB_NAME=connection.settings_dict["NAME"],  # the test database (the user is rolled back after)
        NEXUS_METRICS_TOKEN=METRICS_TOKEN,
        **env,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_production_redirects_to_https_sends_the_headers_and_moves_the_admin():
    out = _probe(NEXUS_ADMIN_PATH="backstage-7f3a/")

    assert out["http"]["status"] == 301
    assert out["http"]["location"] == f"https://{HOST}/api/nowhere/"
    # No proxy configured: a client claiming https in X-Forwarded-Proto is not believed.
    assert out["http_forwarded_https"]["status"] == 301
    # Health probes over plain http are answered, not redirected; which service failed is for operators only.
    assert out["health_http"]["status"] in (200, 503)
    assert out["health_body"] == ["status"]
    assert out["health_body_operator"] == ["checks", "mode", "status"]
    # The benchmarks' bare view is not routed in production.
    assert out["bare"]["status"] == 404

    https = out["https"]
    assert https["status"] == 404
    csp = https["headers"].pop("Content-Security-Policy")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert https["headers"] == {
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
    }

    assert out["admin_moved"]["status"] == 302  # to the login page at the new path
    assert out["admin_moved"]["location"].startswith("/backstage-7f3a/login/")
    assert out["admin_index"] == {"login": 302, "status": 200, "site_admin": True, "secure_cookie": True}
    for old in ("admin_old", "admin_old_login", "admin_old_logged_in"):
        assert out[old]["status"] == 404, old
    # GraphiQL and introspection are off in production; the API docs are served under the policy.
    assert out["graphiql"]["status"] == 404
    assert "introspection has been disabled" in out["introspection"]["errors"][0]["message"]
    docs_policy = {d.strip() for d in out["docs"]["headers"]["Content-Security-Policy"].split(";")}
    assert out["docs"]["status"] == 200 and "script-src 'self'" in docs_policy  # no inline script, no nonce


@pytest.mark.django_db(transaction=True)
def test_behind_a_trusted_proxy_x_forwarded_proto_counts_as_https():
    out = _probe(NEXUS_TRUSTED_PROXIES="1")
    assert out["http"]["status"] == 301
    forwarded = out["http_forwarded_https"]
    assert forwarded["status"] == 404  # served, not redirected
    assert forwarded["headers"]["Strict-Transport-Security"].startswith("max-age=31536000")
    assert out["admin_moved"]["location"].startswith("/admin/login/")  # the default path
    assert out["admin_index"]["status"] == 200


# --------------------------------------------------------------------------- parsing of the new variables


@pytest.mark.parametrize(
    ("value", "proxies", "expected"),
    [
        ("", 0, None),  # no proxy: the header is never trusted
        ("", 1, ("HTTP_X_FORWARDED_PROTO", "https")),
        ("off", 2, None),
        ("X-Scheme", 0, ("HTTP_X_SCHEME", "https")),  # explicit: the operator vouches for the proxy
    ],
)
def test_proxy_ssl_header(monkeypatch, value, proxies, expected):
    monkeypatch.setenv("NEXUS_PROXY_SSL_HEADER", value)
    assert nexus_settings.env_proxy_ssl_header("NEXUS_PROXY_SSL_HEADER", proxies > 0) == expected


def test_a_bad_proxy_header_name_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("NEXUS_PROXY_SSL_HEADER", "X Forwarded: proto")
    with pytest.raises(SystemExit, match="NEXUS_PROXY_SSL_HEADER must be a header name like X-Forwarded-Proto"):
        nexus_settings.env_proxy_ssl_header("NEXUS_PROXY_SSL_HEADER", False)


@pytest.mark.parametrize(
    ("value", "expected"), [("", "admin/"), ("backstage", "backstage/"), ("/ops/admin-9z/", "ops/admin-9z/")]
)
def test_admin_path_is_normalised(monkeypatch, value, expected):
    monkeypatch.setenv("NEXUS_ADMIN_PATH", value)
    assert nexus_settings.env_url_prefix("NEXUS_ADMIN_PATH", "admin", taken=("api",)) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [("api/admin", "must not start with api/"), ("back stage", "must be a path like"), ("a//b", "must be a path")],
)
def test_a_bad_admin_path_is_refused(monkeypatch, value, message):
    monkeypatch.setenv("NEXUS_ADMIN_PATH", value)
    with pytest.raises(SystemExit, match=message):
        nexus_settings.env_url_prefix("NEXUS_ADMIN_PATH", "admin", taken=("api",))


def test_the_admin_path_in_use_is_the_setting():
    from django.urls import resolve

    assert resolve(f"/{settings.NEXUS_ADMIN_PATH}").app_name == "admin"
