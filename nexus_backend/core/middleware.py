"""The project's own middleware.

``RequestContextMiddleware``: what an operator needs from every request, in one layer to keep the overhead to one
frame:

1. **request id**: the client's sane ``X-Request-ID`` or a new uuid4 (``request_id.py``), bound for the whole
   request (every log record carries it, and every Celery task enqueued meanwhile), returned in ``X-Request-ID``
   and in every error body;
2. **errors as JSON**: an unexpected exception in a view is logged with its traceback and answered
   ``500 {"detail", "code", "request_id"}``, with ``DEBUG`` on too (Django's HTML debug pages never reach a
   client: a 400/403/404/500 page that is not JSON is replaced by the JSON one);
3. **request metrics**: latency by view and response counts by view and status (``prometheus.py``).

It sits right after ``RequestTrackingMiddleware`` (client IP and block list), so a blocked address's 403 costs
nothing here.

``BodySizeLimitMiddleware``: refuse oversized request bodies before anything reads them. It runs right after
``RequestContextMiddleware`` (so refusals are logged, carry the request id and blocked addresses still get their
403) and answers ``413`` from the declared ``Content-Length`` alone: a client that announces 50 MB is refused
without the server reading a byte of it. Why here and not only through Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``:
DRF's parsers read ``request`` as a stream and never consult that setting, so a JSON body of any size would
otherwise be read into memory and parsed. Bodies that turn out larger while being read through ``request.body``
(GraphQL, forms) raise ``RequestDataTooBig``, which :func:`nexus_backend.core.exceptions.json_400` also answers with
``413``.

It also keeps the JSON endpoints (``/api/``, ``/graphql/``) JSON only: a ``POST``, ``PUT`` or ``PATCH`` the view
implements whose ``Content-Type`` is not ``application/json`` (an empty body too) is answered ``415`` before the
view, its authentication or its rate limits run. A web page can make a browser send a cross-site form or
``text/plain`` POST without asking (no CORS preflight), and such a request must never count as a login attempt
or reach a password hash.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.core.signals import got_request_exception
from django.http import Http404, JsonResponse
from django.utils.log import log_response

from . import exceptions, prometheus, request_id
from .exceptions import error_response, json_413

logger = logging.getLogger(__name__)

_JSON_ERRORS = {
    400: exceptions.json_400,
    403: exceptions.json_403,
    404: exceptions.json_404,
    500: exceptions.json_500,
}


def _is_debug_page(response) -> bool:
    """An HTML/text error page Django made (a debug page with ``DEBUG`` on), not a DRF or JSON answer."""
    if response.status_code not in _JSON_ERRORS or hasattr(response, "accepted_renderer"):
        return False
    return not response.get("Content-Type", "").startswith("application/json")


class RequestContextMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = request_id.from_header(request.META.get(request_id.META_KEY))
        request.request_id = rid
        token = request_id.bind(rid)
        start = time.perf_counter()
        try:
            response = self.get_response(request)
            status = response.status_code
            if status >= 400:
                if settings.DEBUG and _is_debug_page(response):
                    response = self._json_instead(request, response)
                # Django logs 4xx/5xx after the middleware chain, outside this request's context: log here instead,
                # so the line carries the id (log_response marks the response; Django does not log it twice).
                log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
            response[request_id.HEADER] = rid
            prometheus.observe(request, response.status_code, time.perf_counter() - start)
            return response
        finally:
            request_id.reset(token)

    def process_exception(self, request, exception):
        """An exception no view handled: JSON 500 (never a debug page), logged once with its traceback."""
        if isinstance(exception, Http404 | PermissionDenied | BadRequest | SuspiciousOperation):
            return None  # Django answers these with handler404/403/400 (JSON; see _is_debug_page for DEBUG)
        got_request_exception.send(sender=None, request=request)  # error reporters hook this signal
        response = exceptions.json_500(request)
        log_response(
            "%s: %s",
            response.reason_phrase,
            request.path,
            response=response,
            request=request,
            exception=exception,
        )
        return response

    @staticmethod
    def _json_instead(request, response):
        replacement = _JSON_ERRORS[response.status_code](request)
        replacement._has_been_logged = getattr(response, "_has_been_logged", False)
        return replacement


JSON_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_PREFIXES = ("/api/", "/graphql/")


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
                return error_response(
                    f"Content-Length must be a whole number of bytes, got {declared!r}.", "bad_request", 400
                )
            if length > settings.NEXUS_MAX_BODY_BYTES:
                return json_413(request, length)
        return self.get_response(request)

    @staticmethod
    def process_view(request, view_func, view_args, view_kwargs):
        """Refuse a non-JSON body once the URL is resolved, if the view answers this method at all: a method it
        does not implement stays its 405, an unknown path its 404."""
        if request.method not in JSON_METHODS or not request.path.startswith(JSON_PREFIXES):
            return None
        view_class = getattr(view_func, "view_class", None) or getattr(view_func, "cls", None)
        graphql_post = request.method == "POST" and request.path.startswith("/graphql/")  # dispatch() does it all
        if not graphql_post and (view_class is None or not hasattr(view_class, request.method.lower())):
            return None
        content_type = request.META.get("CONTENT_TYPE", "")
        if content_type.split(";", 1)[0].strip().lower() == "application/json":
            return None
        message = f"Unsupported media type {content_type!r} in request: send application/json."
        if request.path.startswith("/graphql/"):  # in GraphQL's error shape, as the GraphQL view answers
            body = {"errors": [{"message": message, "extensions": {"code": "unsupported_media_type"}}]}
            return JsonResponse(body, status=415)
        return error_response(message, "unsupported_media_type", 415)
