"""OpenAPI shapes of the error bodies that :func:`nexus_backend.core.exceptions.exception_handler` writes."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers


def _request_id() -> serializers.Field:
    return serializers.CharField(
        help_text="The request's id, also in the `X-Request-ID` response header and in the server's log lines."
    )


class ErrorSerializer(serializers.Serializer):
    """Every error: a readable `detail`, a machine-readable `code` and the `request_id` to quote when reporting it."""

    detail = serializers.CharField()
    code = serializers.CharField()
    request_id = _request_id()


def _messages() -> serializers.Field:
    return serializers.ListField(child=serializers.CharField(), required=False)


def _item_messages() -> serializers.Field:
    return serializers.JSONField(
        required=False,
        help_text="A list of messages, or for errors in single items an object mapping each failing item's "
        "index to its messages.",
    )


def validation_error(
    name: str, fields: list[str], *, list_fields: tuple[str, ...] = (), description: str = "Invalid input."
) -> OpenApiResponse:
    """A 400 body: ``detail``, ``code`` and, for each field that failed, its list of messages
    (``list_fields`` are list inputs whose items are checked one by one)."""
    body = inline_serializer(
        name=name,
        fields={
            "detail": serializers.CharField(),
            "code": serializers.CharField(),
            **{field: _item_messages() if field in list_fields else _messages() for field in fields},
            "non_field_errors": _messages(),
            "request_id": _request_id(),
        },
    )
    return OpenApiResponse(response=body, description=description)


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


def conflict(name: str, codes: list[str], description: str) -> OpenApiResponse:
    body = inline_serializer(
        name=name,
        fields={
            "detail": serializers.CharField(),
            "code": serializers.ChoiceField(choices=codes),
            "request_id": _request_id(),
        },
    )
    return OpenApiResponse(response=body, description=description)


UNAUTHENTICATED = error("Missing, invalid or expired credentials.")
FORBIDDEN = error("Authenticated, but not allowed to do this.")
NOT_FOUND = error("No such object.")
