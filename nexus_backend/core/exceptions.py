"""Errors answered as JSON, with the shapes the API documents.

- Validation: 400 ``{"detail": "...", "errors": {field: [messages]}}`` (the field map stays at the top level too,
  as DRF clients expect: ``{"field": ["message"]}``).
- Domain errors raised by services (:class:`DomainError` subclasses) carry their own status and code.
- Every error body carries ``request_id``, the id in the response's ``X-Request-ID`` header and in the log lines of
  the request (``request_id.py``): a user who reports an error can quote it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from . import request_id


class DomainError(Exception):
    """A rule of the domain refused the operation. Services raise these; the API maps them to HTTP."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code: str = "invalid"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class PermissionDenied(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "permission_denied"


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        body = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body[exc.field] = [exc.message]
        body["request_id"] = request_id.current()
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
        response.data = {"detail": "Invalid input.", "code": "invalid", **response.data}
    elif isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": "Invalid input.", "code": "invalid", "non_field_errors": response.data}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data.setdefault("code", getattr(response.data["detail"], "code", "error"))
    if isinstance(response.data, dict):
        response.data["request_id"] = request_id.current()
    return response


def error_response(detail: str, code: str, status: int) -> JsonResponse:
    """An error answered outside DRF, in the same shape."""
    return JsonResponse({"detail": detail, "code": code, "request_id": request_id.current()}, status=status)


@csrf_exempt  # an unknown path is a 404 for every method, not a CSRF failure (HTML) for POSTs
def json_404(request, exception=None):
    return error_response("Not found.", "not_found", 404)


def json_500(request):
    return error_response("Server error.", "server_error", 500)


def json_400(request, exception=None):
    if isinstance(exception, RequestDataTooBig):  # the body outgrew DATA_UPLOAD_MAX_MEMORY_SIZE while being read
        return json_413(request)
    return error_response("Bad request.", "bad_request", 400)


def json_403(request, exception=None):
    return error_response("Forbidden.", "permission_denied", 403)


def json_413(request, length: int | None = None):
    """The body is larger than ``NEXUS_MAX_BODY_BYTES`` (``length``: its declared Content-Length, if known)."""
    size = f"The request body ({length:,} bytes)" if length is not None else "The request body"
    detail = f"{size} is larger than the limit of {settings.NEXUS_MAX_BODY_BYTES:,} bytes."
    return error_response(detail, "request_too_large", 413)


def csrf_failure(request, reason: str = ""):
    """``CSRF_FAILURE_VIEW``: a session-authenticated write without a valid CSRF token, answered as JSON."""
    return error_response(f"CSRF check failed: {reason}", "csrf_failed", 403)
