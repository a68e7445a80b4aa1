"""The environment: the ``.env`` file, ``NEXUS_ENV``, and the readers every settings module uses.

Each reader refuses a value it cannot use with one line that names the variable and says what it takes (a typo
must not silently turn a switch off or become a traceback at the first request). Readers are named ``env_<kind>``
and take the variable's name first: tests/test_packaging.py finds the variables the settings read by that shape.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def _env_file(path: Path) -> None:
    """Load KEY=VALUE lines from .env (if present) without overriding the real environment."""
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        os.environ.setdefault(key.strip(), value.strip().strip('"').strip("'"))


_env_file(BASE_DIR / ".env")


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise SystemExit(f"error: {name} must be true or false (1/0, yes/no and on/off work too), got {value!r}")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``, matched without regard to case (``info`` is ``INFO``)."""
    value = os.environ.get(name, "").strip() or default
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise SystemExit(f"error: {name} must be one of {', '.join(choices)}, got {value!r}")


def _env_number(name: str, default, minimum, cast, kind: str):
    raw = os.environ.get(name, "").strip()
    try:
        value = cast(raw) if raw else default
    except ValueError:
        raise SystemExit(f"error: {name} must be {kind}, got {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"error: {name} must be at least {minimum}, got {value}")
    return value


def env_int(name: str, default: int, minimum: int = 0) -> int:
    return _env_number(name, default, minimum, int, "a whole number")


def env_float(name: str, default: float, minimum: float) -> float:
    return _env_number(name, default, minimum, float, "a number")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate such as 5/min."""
    value = os.environ.get(name, "").strip() or default
    count, _, period = value.partition("/")
    if not (
        count.isdigit()
        and int(count) > 0
        and period in ("s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day")
    ):
        raise SystemExit(f"error: {name} must be a rate like 5/min, 100/hour or 2/s, got {value!r}")
    return value


def env_logging_mode(name: str) -> str:
    value = os.environ.get(name, "on").strip().lower() or "on"
    value = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}.get(value, value)
    if value not in ("on", "off", "sync"):
        raise SystemExit(f"error: {name} must be on, off or sync (sync: the slow per-request INSERT), got {value!r}")
    return value


def env_networks(name: str, default: str) -> list:
    try:
        return [ipaddress.ip_network(item, strict=False) for item in env_list(name, default)]
    except ValueError as exc:
        raise SystemExit(f"error: {name} must be addresses or networks like 10.0.0.0/8, ::1 ({exc})") from None


def env_proxy_ssl_header(name: str, behind_proxy: bool) -> tuple[str, str] | None:
    """The header a TLS-terminating proxy sets to "https" (Django's SECURE_PROXY_SSL_HEADER). Trusted only behind
    a proxy (it must overwrite what clients send): empty means X-Forwarded-Proto when NEXUS_TRUSTED_PROXIES > 0,
    "off" means never."""
    value = os.environ.get(name, "").strip()
    if value.lower() in ("off", "none", "false", "0"):
        return None
    if not value:
        value = "X-Forwarded-Proto" if behind_proxy else ""
    if not value:
        return None
    if not re.fullmatch(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*", value):
        raise SystemExit(f"error: {name} must be a header name like X-Forwarded-Proto, or off; got {value!r}")
    return ("HTTP_" + value.upper().replace("-", "_"), "https")


def env_url_prefix(name: str, default: str, taken: tuple[str, ...]) -> str:
    """A path prefix such as "backstage-4f2a/" (no leading slash, one trailing slash) that no other route uses."""
    value = os.environ.get(name, "").strip().strip("/") or default
    if not re.fullmatch(r"[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*", value):
        raise SystemExit(f"error: {name} must be a path like backstage-4f2a/ (letters, digits, . _ ~ -), got {value!r}")
    if value.split("/")[0] in taken:
        raise SystemExit(
            f"error: {name} must not start with {value.split('/')[0]}/, another route uses it; got {value!r}"
        )
    return value + "/"


# Which settings module nexus_backend.settings loads (development.py or production.py). A typo must not fall back
# to DEBUG=true. The component modules read PRODUCTION only for defaults that differ between the two.
ENVIRONMENT = os.environ.get("NEXUS_ENV", "").strip().lower() or "development"  # development | production
if ENVIRONMENT not in ("development", "production"):
    raise SystemExit(f"error: NEXUS_ENV must be development or production, got {ENVIRONMENT!r}")
PRODUCTION = ENVIRONMENT == "production"
