"""Turn "service unreachable" exceptions into one line a user can act on."""

from __future__ import annotations

from django.db.utils import OperationalError as DbOperationalError
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Exceptions that mean "Redis is not usable right now" (connection refused, timeout, loading, OOM, read-only ...).
REDIS_ERRORS = (RedisError, OSError)


def explain_unreachable(exc: BaseException) -> str | None:
    """A one-line explanation if ``exc`` means a service could not be reached, else None."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, DbOperationalError):
        hint = "check DATABASE_URL (or unset it to use the embedded PostgreSQL)"
        if "does not exist" in first:
            hint = "create it (e.g. `createdb -h HOST -U USER NAME`) or point DATABASE_URL at one that exists"
        return f"cannot use the database: {first}; {hint}"
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return f"cannot reach Redis: {first}; check REDIS_URL (or unset it to use the embedded Redis)"
    if isinstance(exc, KombuOperationalError):
        return f"cannot reach the Celery broker: {first}; check CELERY_BROKER_URL"
    return None
