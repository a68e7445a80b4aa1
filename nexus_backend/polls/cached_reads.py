"""Cached bodies of the poll API's reads, and the HTTP response that carries one.

A view passes a ``compute`` callable returning the data it would have answered with (from the selectors and
serializers, as before); this module renders it to JSON once, caches those bytes, and answers later requests with
them: a hit costs one Redis round trip and no database query, no serializer, no renderer. Every cached answer says
what happened in its ``X-Cache`` header (see :data:`OUTCOMES`).

A cached body must not outlive what it says: an open poll's ``is_open`` turns false at ``expires_at`` without any
write, so such entries expire then at the latest.

The cache itself (keys, the read-through store, invalidation) is ``nexus_backend.caching``; this module is the
polls' use of it, with ``polls/apps.py`` (admin and shell writes invalidate) and ``polls/services.py`` (each write
says what it changed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime

from django.db.models import Min
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from nexus_backend.caching import keys
from nexus_backend.caching.store import Fetched, read_through

from .models import Poll

CACHE_HEADER = "X-Cache"
OUTCOMES = {
    "hit": "served from Redis",
    "miss": "computed from the database by this request, then cached",
    "coalesced": "another request was computing it; this one waited for its result",
    "bypass": "read inside a transaction that changed it: computed, not cached",
    "off": "caching is switched off (NEXUS_CACHE_ENABLED=false)",
    "degraded": "Redis did not answer: computed from the database",
}

#: For ``@extend_schema(parameters=[...])`` of the cached endpoints.
CACHE_HEADER_PARAMETER = OpenApiParameter(
    CACHE_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200],
    enum=list(OUTCOMES),
    description="How the cache answered: " + "; ".join(f"`{k}`: {v}" for k, v in OUTCOMES.items()) + ".",
)

_renderer = JSONRenderer()


def render(data) -> bytes:
    """The exact bytes DRF's JSONRenderer answers with."""
    return _renderer.render(data)


def _datetime(value) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _open_until(item: Mapping, now: datetime) -> datetime | None:
    """When an open poll's body stops being true by itself (its expiry), if that is in the future."""
    if item.get("is_closed"):
        return None
    expires_at = _datetime(item.get("expires_at"))
    return expires_at if expires_at is not None and expires_at > now else None


def _earliest(*moments: datetime | None) -> datetime | None:
    found = [m for m in moments if m is not None]
    return min(found) if found else None


def poll_detail(*, poll_id: int, compute: Callable[[], Mapping]) -> Fetched:
    """``GET /api/polls/{id}/``: ``compute`` returns the serialized poll (raises NotFound for a missing one)."""

    def computed():
        data = compute()
        return render(data), _open_until(data, timezone.now())

    return read_through(keys.poll_detail_entry(poll_id=poll_id), computed)


def poll_results(*, poll_id: int, compute: Callable[[], Mapping]) -> Fetched:
    """``GET /api/polls/{id}/results/``: ``compute`` returns ``selectors.poll_results(...).as_dict()``."""

    def computed():
        data = compute()
        until = None
        if data.get("is_open"):  # the body has no expiry: read it (by primary key) only for open polls
            expires_at = Poll.objects.filter(pk=poll_id).values_list("expires_at", flat=True).first()
            until = _open_until({"expires_at": expires_at}, timezone.now())
        return render(data), until

    return read_through(keys.poll_results_entry(poll_id=poll_id), computed)


def poll_list(*, params: Mapping, origin: str, compute: Callable[[], Mapping]) -> Fetched:
    """A page of ``GET /api/polls/``: ``compute`` returns the paginated body (``count``, ``next`` ...).

    The page expires when one of its open polls does; with an ``active`` filter, when any poll does (an expiry
    moves a poll between the filtered sets, which changes ``count`` and the pages)."""

    def computed():
        data = compute()
        now = timezone.now()
        until = _earliest(*(_open_until(item, now) for item in data.get("results") or []))
        if params.get("active") not in (None, ""):
            soonest = Poll.objects.filter(is_closed=False, expires_at__gt=now).aggregate(m=Min("expires_at"))["m"]
            until = _earliest(until, soonest)
        return render(data), until

    return read_through(keys.poll_list_entry(params=params, origin=origin), computed)


def respond(request, fetched: Fetched) -> HttpResponse | Response:
    """The HTTP answer for a cached body: the bytes as they are for JSON clients; parsed again only for another
    renderer DRF negotiated (the browsable API in development, or JSON with parameters such as ``indent``)."""
    renderer = getattr(request, "accepted_renderer", None)
    media_type = getattr(request, "accepted_media_type", "") or ""
    if renderer is None or (isinstance(renderer, JSONRenderer) and ";" not in media_type):
        response = HttpResponse(fetched.body, content_type="application/json")
    else:
        response = Response(json.loads(fetched.body))
    response[CACHE_HEADER] = fetched.outcome
    return response
