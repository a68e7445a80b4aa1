"""One middleware, first in ``MIDDLEWARE``, doing three things in order:

1. **client IP**: resolved once (``client_ip.py``) and stored as ``request.client_ip``;
2. **block list**: an in-process set (``blocklist.py``), no query per request; a blocked address gets 403 JSON;
3. **request log**: after the response, one tuple appended to the in-process buffer (``recorder.py``); the
   tracking thread and the flusher do the rest. The path is logged without its query string unless that carries
   an attack payload (SQL injection, ``../``, ``<script`` ...), as the detector reads web-server logs. Blocked
   requests are logged too (the detector wants them).

It also drops ``SECURE_PROXY_SSL_HEADER`` (``X-Forwarded-Proto``) from a peer that is not a trusted proxy, so a
client reaching the app directly cannot claim HTTPS.

A view may tell the log what the request really was with :func:`log_as`: GraphQL answers every operation
``POST /graphql/ 200``, so its view records ``/graphql/mutation/vote`` with the status REST would have given
(201, 400, 401, 404, 409, 429); the admin login records a failed attempt as 401 rather than its 200 form page.
The detector then sees GraphQL votes and admin logins as it sees REST ones. A failed login is recorded under the
account it named (``log_as(..., user_id=...)``), so the detector can tell one account guessed from many addresses.

``NEXUS_REQUEST_LOGGING``: ``on`` (default), ``off``, or ``sync`` — the naive synchronous INSERT per request,
kept only so that ``manage.py bench`` can show what it costs.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.http import JsonResponse
from django.utils.functional import SimpleLazyObject, empty

from . import client_ip
from .blocklist import BLOCKLIST
from .detection.payloads import target_path
from .models import RequestLog
from .recorder import RECORDER
from .stream import LIMITS

logger = logging.getLogger(__name__)

BLOCKED_BODY = {"detail": "Requests from your address are blocked.", "code": "ip_blocked"}
LOG_AS = "_nexus_log_as"  # (path, status) a view set with log_as(), recorded instead of the response's
LOG_USER = "_nexus_log_user"  # the account a view set with log_as(), recorded instead of the authenticated user


def log_as(request, *, path: str | None = None, status: int | None = None, user_id: int | None = None) -> None:
    """Record ``request`` in the request log under ``path`` and/or ``status`` instead of the real ones, and under
    ``user_id`` (a login: the account it named) instead of the authenticated user."""
    django_request = getattr(request, "_request", request)
    if user_id is not None:
        setattr(django_request, LOG_USER, user_id)
    old_path, old_status = getattr(django_request, LOG_AS, (None, None))
    setattr(django_request, LOG_AS, (path or old_path, status or old_status))


def _logged(request, response) -> tuple[str, int]:
    """What the log records: ``log_as``'s path and status, else the request's path with its query string only when
    that carries an attack payload (``detection.payloads.target_path``: what the detector keeps of a log line)."""
    path, status = getattr(request, LOG_AS, (None, None))
    if path is None:
        query = request.META.get("QUERY_STRING", "")
        path = target_path(f"{request.path}?{query}") if query else request.path
    return path, status or response.status_code


def _user_id(request) -> int | None:
    """The account ``log_as`` named, else the authenticated user's id if something already resolved the user;
    never costs a query here."""
    named = request.__dict__.get(LOG_USER)
    if named is not None:
        return named
    user = request.__dict__.get("user")
    if user is None:
        return None
    if isinstance(user, SimpleLazyObject):
        if user._wrapped is empty:  # nobody looked at request.user: do not load the session for the log
            return None
        user = user._wrapped
    return user.pk if getattr(user, "is_authenticated", False) else None


def _drop_unless_from_trusted_proxy(meta: dict, key: str) -> None:
    """Only a trusted proxy may say that the request came over HTTPS (``SECURE_PROXY_SSL_HEADER``): from any other
    peer the header is dropped before Django's ``request.is_secure()`` reads it."""
    peer = client_ip.normalize_ip(meta.get("REMOTE_ADDR"))
    trusted = settings.NEXUS_TRUSTED_PROXIES, settings.NEXUS_TRUSTED_PROXY_NETWORKS
    if peer is None or not client_ip.from_trusted_proxy(peer, *trusted):
        del meta[key]


class RequestTrackingMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.time()
        start = time.perf_counter()
        ip = client_ip.resolve(request.META, settings.NEXUS_TRUSTED_PROXIES, settings.NEXUS_TRUSTED_PROXY_NETWORKS)
        request.client_ip = ip
        ssl_header = settings.SECURE_PROXY_SSL_HEADER
        if ssl_header and ssl_header[0] in request.META:
            _drop_unless_from_trusted_proxy(request.META, ssl_header[0])

        if not RECORDER.running:
            RECORDER.start()  # the tracking thread also polls the block list's version
        if BLOCKLIST.needs_reload():
            BLOCKLIST.reload()
        if ip is not None and BLOCKLIST.size and BLOCKLIST.match(ip):
            response = JsonResponse(BLOCKED_BODY, status=403)
            response._has_been_logged = True  # no WARNING line per blocked request (a flood would flood the log)
        else:
            response = self.get_response(request)

        mode = settings.NEXUS_REQUEST_LOGGING
        if mode == "on":
            meta = request.META
            path, status = _logged(request, response)
            RECORDER.record(
                ip,
                request.method,
                path,
                status,
                started,
                time.perf_counter() - start,
                _user_id(request),
                meta.get("HTTP_USER_AGENT", ""),
                meta.get("HTTP_REFERER", ""),
            )
        elif mode == "sync":
            self._insert_now(request, response, ip, started, start)
        return response

    @staticmethod
    def _insert_now(request, response, ip, started, start) -> None:
        """The learners' version, for the benchmark only: one INSERT per request, on the request path."""
        meta = request.META
        path, status = _logged(request, response)
        RequestLog.objects.create(
            request_id=uuid.uuid4(),
            ip_address=ip,
            timestamp=datetime.fromtimestamp(started, UTC),
            method=request.method[: LIMITS["method"]],
            path=path[: LIMITS["path"]],
            status_code=status,
            duration_ms=(time.perf_counter() - start) * 1000,
            user_id=_user_id(request),
            user_agent=meta.get("HTTP_USER_AGENT", "")[: LIMITS["user_agent"]],
            referrer=meta.get("HTTP_REFERER", "")[: LIMITS["referrer"]],
        )
