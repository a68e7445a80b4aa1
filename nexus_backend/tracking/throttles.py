"""Rate limits: DRF throttles keyed on the resolved client IP (``client_ip.py``) or the user.

The curriculum's rates (login: 5/min anonymous, 10/min authenticated) and the voting limits are read from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (set from the environment in settings.py) on every request, so
they can be changed without touching code. A refusal is DRF's: ``429`` with a ``Retry-After`` header and the
project's JSON error body (``{"detail": …, "code": "throttled"}``).

One change to DRF's ``SimpleRateThrottle``: its history is read, edited and written back in three steps, so
concurrent requests all read the same history and all pass (40 parallel login attempts would all get through
a 5/min limit). Here the sliding window lives in a Redis sorted set updated by one Lua script: check and
record are one atomic step. If Redis does not answer, the limit is not enforced (fail open, logged): the API
keeps answering.
"""

from __future__ import annotations

import logging
import secrets
import time

import redis
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .client_ip import client_ip
from .recorder import RECORDER

logger = logging.getLogger(__name__)

SLIDING_WINDOW = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
    redis.call('ZADD', key, now, ARGV[4])
    redis.call('PEXPIRE', key, math.ceil(window * 1000))
    return {1, '0'}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, tostring(tonumber(oldest[2]) + window - now)}
"""
_scripts: dict[int, object] = {}
_last_warning = 0.0


def _script(client: redis.Redis):
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(SLIDING_WINDOW)
    return script


class SlidingWindowThrottle(SimpleRateThrottle):
    """A DRF throttle whose window is kept atomically in Redis. Subclasses set ``scope`` and ``get_cache_key``."""

    def __init__(self) -> None:
        try:
            self.rate = api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(
                f"REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'] has no rate for {self.scope!r}"
            ) from None
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self._wait: float | None = None

    def get_ident(self, request) -> str:
        return client_ip(request) or "unknown"

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        if RECORDER.redis_down():
            return self._fail_open("Redis was unreachable a moment ago")
        client = RECORDER.client()
        member = f"{time.time():.6f}:{secrets.token_hex(4)}"
        try:
            allowed, wait = _script(client)(
                keys=[cache.make_key(self.key)],
                args=[time.time(), self.duration, self.num_requests, member],
                client=client,
            )
        except (redis.RedisError, OSError) as exc:
            RECORDER.redis_failed(exc)
            return self._fail_open(str(exc))
        self._wait = max(0.0, float(wait))
        return bool(int(allowed))

    def wait(self) -> float | None:
        return self._wait

    def _fail_open(self, why: str) -> bool:
        global _last_warning
        if time.monotonic() - _last_warning > 60:
            _last_warning = time.monotonic()
            logger.warning("rate limits are not enforced: %s", why)
        return True


def _user_proved(request):
    """The user a login request proves it already is (valid bearer token or session), or ``None``.

    The token view authenticates nobody (simplejwt), so this looks for itself, leniently: an expired or
    malformed token just means "anonymous". Computed once per request, for both login throttles.
    """
    django_request = getattr(request, "_request", request)
    if hasattr(django_request, "_nexus_login_user"):
        return django_request._nexus_login_user
    user = None
    session_user = getattr(django_request, "user", None)
    if session_user is not None and session_user.is_authenticated:
        user = session_user
    elif django_request.META.get("HTTP_AUTHORIZATION"):
        from rest_framework_simplejwt.authentication import JWTAuthentication
        from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken

        try:
            found = JWTAuthentication().authenticate(django_request)
        except (AuthenticationFailed, InvalidToken):
            found = None
        user = found[0] if found else None
    django_request._nexus_login_user = user
    return user


class LoginAnonThrottle(SlidingWindowThrottle):
    """``POST /api/auth/token/`` from someone not logged in: per resolved client IP (default 5/min)."""

    scope = "login_anon"

    def get_cache_key(self, request, view):
        if _user_proved(request) is not None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUserThrottle(SlidingWindowThrottle):
    """``POST /api/auth/token/`` from a logged-in user: per user (default 10/min)."""

    scope = "login_user"

    def get_cache_key(self, request, view):
        user = _user_proved(request)
        if user is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"user-{user.pk}"}


class VoteUserThrottle(SlidingWindowThrottle):
    """Votes per user (the vote view requires a user)."""

    scope = "vote_user"

    def get_cache_key(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"user-{request.user.pk}"}


class VoteIPThrottle(SlidingWindowThrottle):
    """Votes per resolved client IP, whoever is logged in (many accounts on one machine)."""

    scope = "vote_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


LOGIN_THROTTLES = [LoginAnonThrottle, LoginUserThrottle]
VOTE_THROTTLES = [VoteUserThrottle, VoteIPThrottle]


def reset_rate_limits() -> int:
    """Forget every rate-limit window (tests call this between tests). Returns how many keys were deleted."""
    return cache.delete_pattern("throttle_*") or 0
