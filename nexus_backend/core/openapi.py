"""OpenAPI shapes of the error bodies that :func:`nexus_backend.core.exceptions.exception_handler` writes."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
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


# ---------------------------------------------------------------- answers every operation can give
# Some refusals come from layers every view shares (authentication, throttles, the parsers, the block list,
# the body-size limit), not from the view's own code. Documenting them here, once, keeps the schema truthful
# for every operation without repeating them in each ``extend_schema``; the fuzz test (tests/core/test_fuzz.py)
# fails on any status code the schema does not list.
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again."}}


class NexusAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the shared refusals (400/401/403/413/415/429) an operation can give."""

    def _shared_responses(self) -> dict[str, OpenApiResponse]:
        view = self.view
        shared: dict[str, OpenApiResponse] = {
            "403": error("Your address is blocked (`ip_blocked`), or not allowed to do this."),
        }
        if getattr(view, "authentication_classes", None):
            shared["401"] = error("The bearer token is invalid or expired (`token_not_valid`).")
        if self.method in ("POST", "PUT", "PATCH"):
            shared["400"] = error("The body is not valid JSON (`parse_error`).")
            shared["413"] = error("The body is larger than NEXUS_MAX_BODY_BYTES (`request_too_large`).")
            shared["415"] = error("The body is not `application/json` (`unsupported_media_type`).")
        if getattr(view, "throttle_classes", None):
            shared["429"] = error("Rate limited (`throttled`); the `Retry-After` header says for how long.")
        return shared

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in self._shared_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
            if code == "429":
                responses[code].setdefault("headers", {}).update(RETRY_AFTER)
        return dict(sorted(responses.items()))
