"""Rate limits: DRF throttles keyed on the client's address group (``client_ip.py``), the user or the account.

The login, sign-up and voting limits are read from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (set from the environment in settings/drf.py) on every request, so
they can be changed without touching code. A refusal is DRF's: ``429`` with a ``Retry-After`` header and the
project's JSON error body (``{"detail": …, "code": "throttled"}``).

One change to DRF's ``SimpleRateThrottle``: its history is read, edited and written back in three steps, so
concurrent requests all read the same history and all pass (40 parallel login attempts would all get through
a 5/min limit). Here the sliding window lives in a Redis sorted set updated by one Lua script: check and
record are one atomic step. If Redis does not answer, the limit is not enforced (fail open, logged): the API
keeps answering.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import unicodedata
from typing import cast

import redis
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .client_ip import address_group, client_ip
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
    """A DRF throttle whose window is kept atomically in Redis. Subclasses set ``scope`` and ``get_cache_key``.

    ``get_ident`` is the client's address group (``client_ip.address_group``): an IPv4 address, or an IPv6
    address's /64, which one subscriber owns whole and can rotate through for free.
    """

    scope: str  # every subclass names its rate

    def __init__(self) -> None:
        try:
            # The stubs type the rates as numbers; settings hold "10/min" strings (DRF's format).
            self.rate = cast(str, api_settings.DEFAULT_THROTTLE_RATES[self.scope])
        except KeyError:
            raise ImproperlyConfigured(
                f"REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'] has no rate for {self.scope!r}"
            ) from None
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self._wait: float | None = None
        self.member: str | None = None  # the entry this request added to the window, if it was allowed

    def get_ident(self, request) -> str:
        return address_group(client_ip(request)) or "unknown"

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
        if int(allowed):
            self.member = member
        return bool(int(allowed))

    def give_back(self) -> None:
        """Remove the entry this request added: it no longer counts (a login that succeeded)."""
        if self.member is None:
            return
        try:
            RECORDER.client().zrem(cache.make_key(self.key), self.member)
        except (redis.RedisError, OSError) as exc:
            RECORDER.redis_failed(exc)
        self.member = None

    def wait(self) -> float | None:
        return self._wait

    def _fail_open(self, why: str) -> bool:
        global _last_warning
        if time.monotonic() - _last_warning > 60:
            _last_warning = time.monotonic()
            logger.warning("rate limits are not enforced: %s", why)
        return True


# ------------------------------------------------------------------------------------------- logins
# Failed logins are limited per address group and per target account, django-axes' way: nothing the client
# sends (a bearer token, a session, another address) moves an attempt to another bucket. Every attempt takes a
# slot in both windows before the password is hashed (a refused attempt costs no hash); a login that succeeds
# gives its slots back, so only failures (and attempts still running) count. When either window is full the
# answer is 429 with Retry-After, even for the right password: the account stays locked until its failures age
# out of the window. The same throttles guard the API token view and the admin login form.


def login_username(request) -> str:
    """The username a login request names: the JSON body (API) or the form (admin); "" if none."""
    django_request = getattr(request, "_request", request)
    if django_request is not request:  # a DRF Request: its parsed body
        data = request.data
    else:
        data = django_request.POST
    value = data.get("username", "") if hasattr(data, "get") else ""
    return value if isinstance(value, str) else ""


class LoginIPThrottle(SlidingWindowThrottle):
    """Failed logins per client address group (default 5/min)."""

    scope = "login_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginAccountThrottle(SlidingWindowThrottle):
    """Failed logins per target account, from any address (default 10/hour): the lockout of django-axes.

    Keyed on a digest of the username, case-folded and NFKC-normalised (``Alice`` and ``ALICE`` share one
    bucket), so a long username costs no memory and unknown usernames are limited like real ones.
    """

    scope = "login_account"

    def get_cache_key(self, request, view):
        return self.key_for(login_username(request))

    @classmethod
    def key_for(cls, username: str) -> str:
        name = unicodedata.normalize("NFKC", username).casefold().strip()
        digest = hashlib.sha256(name.encode()).hexdigest()[:32]
        return cls.cache_format % {"scope": cls.scope, "ident": f"account-{digest}"}


class RegisterIPThrottle(SlidingWindowThrottle):
    """Sign-ups per client address group (default 10/hour): each one costs a password hash and makes an account."""

    scope = "register_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class VoteUserThrottle(SlidingWindowThrottle):
    """Votes per user (the vote view requires a user)."""

    scope = "vote_user"

    def get_cache_key(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"user-{request.user.pk}"}


class VoteIPThrottle(SlidingWindowThrottle):
    """Votes per client address group, whoever is logged in (many accounts on one machine)."""

    scope = "vote_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


LOGIN_THROTTLES = [LoginIPThrottle, LoginAccountThrottle]
REGISTER_THROTTLES = [RegisterIPThrottle]
VOTE_THROTTLES = [VoteUserThrottle, VoteIPThrottle]


def throttles_check(request, throttle_classes) -> tuple[list[SlidingWindowThrottle], float | None]:
    """Run ``throttle_classes`` in order, stopping at the first that refuses (DRF's views, GraphQL, the admin login).

    Returns the throttles that took a slot (to :meth:`~SlidingWindowThrottle.give_back` later) and ``None`` when
    all allow the request, or the seconds to wait when one refuses it. Stopping matters for logins: unlike DRF's
    own loop, an attempt refused per address takes no slot in the target account's window, so an attacker held
    back by the address limit cannot fill a victim's lockout window at the speed of refusals.
    """
    throttles: list[SlidingWindowThrottle] = []
    for throttle_class in throttle_classes:
        throttle = throttle_class()
        if not throttle.allow_request(request, None):
            return throttles, throttle.wait() or 0.0
        throttles.append(throttle)
    return throttles, None


def reset_rate_limits() -> int:
    """Forget every rate-limit window (tests call this between tests). Returns how many keys were deleted."""
    return cache.delete_pattern("throttle_*") or 0  # type: ignore[attr-defined]  # django-redis's cache adds it
