"""The request id: one short string that ties together every log line a request causes, in the web process and in
the Celery tasks it enqueues (``celery_signals.py`` carries it in the task message's headers).

It lives in a :class:`~contextvars.ContextVar`, so threads and tasks never see each other's id. An id sent by the
client (``X-Request-ID``, e.g. from a proxy that already assigned one) is kept when it is sane; anything else is
replaced by a fresh uuid4, so a client cannot inject newlines or megabytes into the logs.
"""

from __future__ import annotations

import os
import random
import re
from contextvars import ContextVar, Token

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
MAX_LENGTH = 128
_SANE = re.compile(rf"[A-Za-z0-9._:@/+=-]{{1,{MAX_LENGTH}}}")

_current: ContextVar[str | None] = ContextVar("nexus_request_id", default=None)


def sanitize(value: object) -> str | None:
    """``value`` if it is a sane id (1-128 characters of letters, digits and ``._:@/+=-``), else ``None``."""
    if isinstance(value, str) and _SANE.fullmatch(value):
        return value
    return None


#: The generator of request ids: a private one, seeded from the OS and reseeded in every forked process (gunicorn
#: workers), so that code seeding the global ``random`` (a notebook's ``seed_everything``, a seeded test) never
#: makes ids repeat across runs; a repeated id would be dropped from the request log as a duplicate.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)


def new() -> str:
    """A random uuid4 in its usual text form, made without ``uuid.uuid4()``: its ``os.urandom`` call and the
    ``UUID`` object cost several times more, on every request. Not a secret, only unique (see ``_random``)."""
    bits = _random.getrandbits(128) & ~(0xF000 << 64) & ~(0xC000 << 48) | (0x4000 << 64) | (0x8000 << 48)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def from_header(value: str | None) -> str:
    """The id for a request: the client's ``X-Request-ID`` when sane, else a new uuid4."""
    return sanitize(value) or new()


def current() -> str | None:
    """The id of the request (or task) running in this context, ``None`` outside one."""
    return _current.get()


def bind(value: str | None) -> Token:
    """Make ``value`` the current id; :func:`reset` with the returned token restores the previous one."""
    return _current.set(value)


def reset(token: Token) -> None:
    _current.reset(token)
