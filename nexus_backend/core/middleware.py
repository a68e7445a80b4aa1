"""Refuse oversized request bodies before anything reads them.

``BodySizeLimitMiddleware`` runs right after the request-tracking middleware (so refusals are logged and blocked
addresses still get their 403) and answers ``413`` from the declared ``Content-Length`` alone: a client that
announces 50 MB is refused without the server reading a byte of it. Why here and not only through Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE``: DRF's parsers read ``request`` as a stream and never consult that setting, so a
JSON body of any size would otherwise be read into memory and parsed. Bodies that turn out larger while being
read through ``request.body`` (GraphQL, forms) raise ``RequestDataTooBig``, which
:func:`nexus_backend.core.exceptions.json_400` also answers with ``413``.
"""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse

from .exceptions import json_413


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                return JsonResponse(
                    {
                        "detail": f"Content-Length must be a whole number of bytes, got {declared!r}.",
                        "code": "bad_request",
                    },
                    status=400,
                )
            if length > settings.NEXUS_MAX_BODY_BYTES:
                return json_413(request, length)
        return self.get_response(request)
