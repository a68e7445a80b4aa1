"""Every environment variable the settings read refuses a value it cannot use, at startup, with one line that names
the variable and says what it takes: never a traceback, never a typo that silently turns a switch off, never a
value that only fails at the first request (docs/operations.md, "Where the services come from").

Each case runs ``manage.py check`` in a subprocess with its own environment (the settings are read once per
process). The service URLs point at a closed port: ``check`` connects to nothing, so the cases are quick and start
no embedded server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Before this test existed, the first three were tracebacks, the bools were read as false, and the invalidation
# strategy was accepted here and raised a ValueError (a 500) in every cached read.
REFUSED = [
    ("JWT_ACCESS_MINUTES", "fifteen", "must be a whole number"),
    ("JWT_REFRESH_DAYS", "0", "must be at least 1"),
    ("LOG_LEVEL", "loud", "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("NEXUS_LOG_LEVEL", "verbose", "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("NEXUS_CACHE_ENABLED", "ture", "must be true or false"),
    ("DEBUG", "perhaps", "must be true or false"),
    ("NEXUS_DETECTION_AUTO_BLOCK", "sometimes", "must be true or false"),
    ("NEXUS_CACHE_INVALIDATION", "lazy", "must be one of precise, global, ttl"),
    ("NEXUS_LOG_FORMAT", "xml", "must be one of json, plain"),
    ("CELERY_BROKER_URL", "kafka://user:hunter2@broker/", "must be an amqp:// (RabbitMQ) or redis:// URL"),
    ("NEXUS_TRUSTED_PROXIES", "two", "must be a whole number"),
    ("NEXUS_RATE_VOTE_IP", "lots", "must be a rate like 5/min"),
    ("NEXUS_TRUSTED_PROXY_NETWORKS", "10.0.0.0/8, the-load-balancer", "must be addresses or networks"),
    ("NEXUS_RATE_LOGIN_ACCOUNT", "10 per hour", "must be a rate like 5/min"),
    ("NEXUS_RATE_REGISTER_IP", "0/hour", "must be a rate like 5/min"),
    ("NEXUS_RATE_LOGIN_ANON", "5/min", "no longer read"),  # renamed: refused, not silently ignored
    ("NEXUS_RATE_LOGIN_USER", "10/min", "set NEXUS_RATE_LOGIN_ACCOUNT instead"),
    ("POLLS_RESULTS_STRATEGY", "fastest", "must be one of count, counter, summary, delta"),
    ("POLLS_DELTA_FOLD_SECONDS", "0", "must be at least 0.1"),
]

ACCEPTED = [
    ("LOG_LEVEL", "info"),  # any case
    ("NEXUS_LOG_FORMAT", "JSON"),
    ("NEXUS_CACHE_ENABLED", "off"),
    ("NEXUS_CACHE_ENABLED", "Yes"),
    ("DEBUG", "0"),
    ("NEXUS_CACHE_INVALIDATION", "global"),
    ("JWT_ACCESS_MINUTES", "30"),
    ("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:1//"),
    ("NEXUS_TRUSTED_PROXY_NETWORKS", "10.0.0.0/8, 2001:db8::/32, 192.0.2.7"),
    ("POLLS_RESULTS_STRATEGY", "Counter"),
    ("POLLS_DELTA_FOLD_SECONDS", "2.5"),
]


def _check(name: str, value: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="nexus_backend.settings",
        DATABASE_URL="postgres://postgres@127.0.0.1:1/nexus_unused",
        REDIS_URL="redis://127.0.0.1:1/0",
        CELERY_BROKER_URL="redis://127.0.0.1:1/1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("NEXUS_ENV", None)
    env[name] = value
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(("name", "value", "says"), REFUSED, ids=[f"{n}={v}" for n, v, _ in REFUSED])
def test_a_value_that_cannot_be_used_is_one_line_naming_the_variable(name, value, says):
    result = _check(name, value)
    assert result.returncode != 0, f"{name}={value!r} was accepted:\n{result.stdout}{result.stderr}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {name} "), lines[0]
    assert says in lines[0]
    assert "hunter2" not in result.stderr  # a password in a URL is never echoed


@pytest.mark.parametrize(("name", "value"), ACCEPTED, ids=[f"{n}={v}" for n, v in ACCEPTED])
def test_good_values_still_start(name, value):
    result = _check(name, value)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_case_and_spelling_variants_mean_what_they_say():
    """The readers themselves: a true word is True, a false word False, a choice matched in any case comes back
    as the canonical spelling, and a missing variable is the default."""
    from nexus_backend import settings

    os.environ.pop("NEXUS_TEST_SWITCH", None)
    try:
        assert settings.env_bool("NEXUS_TEST_SWITCH", True) is True
        for word in ("1", "TRUE", "yes", "On"):
            os.environ["NEXUS_TEST_SWITCH"] = word
            assert settings.env_bool("NEXUS_TEST_SWITCH", False) is True
        for word in ("0", "False", "NO", "off"):
            os.environ["NEXUS_TEST_SWITCH"] = word
            assert settings.env_bool("NEXUS_TEST_SWITCH", True) is False
        os.environ["NEXUS_TEST_SWITCH"] = "warning"
        assert settings.env_choice("NEXUS_TEST_SWITCH", "INFO", settings.LOG_LEVELS) == "WARNING"
        os.environ["NEXUS_TEST_SWITCH"] = "  "
        assert settings.env_choice("NEXUS_TEST_SWITCH", "INFO", settings.LOG_LEVELS) == "INFO"
    finally:
        os.environ.pop("NEXUS_TEST_SWITCH", None)
