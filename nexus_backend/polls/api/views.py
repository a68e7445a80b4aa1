"""HTTP endpoints for polls. Views validate input with serializers and call selectors (reads) and
services (writes); the rules live there. Errors raised by services become JSON through the project's
exception handler (``nexus_backend.core.exceptions``).

The list, detail and results reads go through the cache (``nexus_backend.polls.cached_reads``): each passes the
function that computes its body, which runs only on a miss; the ``X-Cache`` header says what happened."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import filters, generics, permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from nexus_backend.core import openapi as docs
from nexus_backend.polls import cached_reads as cached
from nexus_backend.tracking.throttles import VOTE_THROTTLES

from .. import selectors, services
from .serializers import (
    PollCreateSerializer,
    PollFilterSerializer,
    PollResultsSerializer,
    PollSerializer,
    PollUpdateSerializer,
    VoteCreateSerializer,
    VoteSerializer,
)

POLL_ID = OpenApiParameter("poll_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Poll id.")
POLL_FIELDS = ["question", "description", "options", "expires_at"]
POLL_VALIDATION = docs.validation_error("PollValidationError", POLL_FIELDS, list_fields=("options",))
POLL_NOT_FOUND = docs.error("No poll with this id.")


class StableOrderingFilter(filters.OrderingFilter):
    """``?ordering=`` plus a final ``-id``: pages never repeat or skip polls that tie on the ordered field."""

    ordering_description = (
        "Sort by `created_at`, `expires_at` or `id`; prefix `-` for descending; comma-separate several. "
        "Default `-created_at`. Polls without an expiry sort last on `expires_at`."
    )

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["example"] = "-created_at"
        return parameters

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if ordering and not any(f.lstrip("-") == "id" for f in ordering):
            ordering = [*ordering, "-id"]
        return ordering


class BoundedSearchFilter(filters.SearchFilter):
    """``?search=`` with at most ``NEXUS_SEARCH_MAX_TERMS`` words and ``NEXUS_SEARCH_MAX_LENGTH`` characters:
    each word is one more ``ILIKE`` over every poll, so 1,500 of them took seconds. Beyond either: 400 on
    ``search``, before any query runs."""

    search_description = "Words that must all appear in the question (at most 5 words, 100 characters by default)."

    def get_search_terms(self, request):
        raw = request.query_params.get(self.search_param, "")
        max_length, max_terms = settings.NEXUS_SEARCH_MAX_LENGTH, settings.NEXUS_SEARCH_MAX_TERMS
        if len(raw) > max_length:
            raise ValidationError({self.search_param: [f"Search at most {max_length} characters."]})
        terms = super().get_search_terms(request)
        if len(terms) > max_terms:
            raise ValidationError({self.search_param: [f"Search at most {max_terms} words."]})
        return terms


class PollListCreateView(generics.GenericAPIView):
    serializer_class = PollSerializer
    filter_backends = [BoundedSearchFilter, StableOrderingFilter]
    search_fields = ["question"]
    ordering_fields = ["created_at", "expires_at", "id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request
            return selectors.poll_list()
        params = PollFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return selectors.poll_list(active=params.validated_data["active"], owner_id=params.validated_data["owner"])

    @extend_schema(
        operation_id="polls_list",
        summary="List polls",
        description="Newest first by default. Anonymous access allowed.",
        parameters=[PollFilterSerializer, cached.CACHE_HEADER_PARAMETER],
        responses={
            200: PollSerializer(many=True),
            400: docs.validation_error("PollFilterValidationError", ["active", "owner", "page_size", "search"]),
            404: docs.error("The page does not exist."),
        },
    )
    def get(self, request: Request) -> HttpResponse | Response:
        def compute():
            queryset = self.filter_queryset(self.get_queryset())
            page = self.paginate_queryset(queryset)
            return self.get_paginated_response(PollSerializer(page, many=True).data).data

        origin = f"{request.scheme}://{request.get_host()}"  # the page's next/previous links contain it
        return cached.respond(request, cached.poll_list(params=request.query_params, origin=origin, compute=compute))

    @extend_schema(
        operation_id="polls_create",
        summary="Create a poll",
        request=PollCreateSerializer,
        responses={201: PollSerializer, 400: POLL_VALIDATION, 401: docs.UNAUTHENTICATED},
    )
    def post(self, request: Request) -> Response:
        data = PollCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        poll = services.poll_create(owner=request.user, **data.validated_data)
        poll = selectors.poll_get(poll_id=poll.pk)
        return Response(PollSerializer(poll).data, status=status.HTTP_201_CREATED)


@extend_schema(parameters=[POLL_ID])
class PollDetailView(generics.GenericAPIView):
    serializer_class = PollSerializer
    lookup_url_kwarg = "poll_id"

    def get_queryset(self):
        # Only DRF's OPTIONS metadata calls get_object() here (a 500 without it, found by the fuzz test).
        return selectors.poll_list()

    @extend_schema(
        operation_id="polls_retrieve",
        summary="One poll",
        parameters=[cached.CACHE_HEADER_PARAMETER],
        responses={200: PollSerializer, 404: POLL_NOT_FOUND},
    )
    def get(self, request: Request, poll_id: int) -> HttpResponse | Response:
        def compute():
            return PollSerializer(selectors.poll_get(poll_id=poll_id)).data

        return cached.respond(request, cached.poll_detail(poll_id=poll_id, compute=compute))

    def _update(self, request: Request, poll_id: int, *, partial: bool) -> Response:
        data = PollUpdateSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        services.poll_update(poll_id=poll_id, user=request.user, **data.to_service_kwargs(partial=partial))
        return Response(PollSerializer(selectors.poll_get(poll_id=poll_id)).data)

    _write_responses = {
        200: PollSerializer,
        400: POLL_VALIDATION,
        401: docs.UNAUTHENTICATED,
        403: docs.error("Only the poll's owner or staff can change it."),
        404: POLL_NOT_FOUND,
        409: docs.conflict("PollUpdateConflict", ["conflict"], "Options cannot change once votes have been cast."),
    }

    @extend_schema(
        operation_id="polls_update",
        summary="Replace a poll (owner or staff)",
        description="Omitted `description` and `expires_at` are reset.",
        request=PollUpdateSerializer,
        responses=_write_responses,
    )
    def put(self, request: Request, poll_id: int) -> Response:
        return self._update(request, poll_id, partial=False)

    @extend_schema(
        operation_id="polls_partial_update",
        summary="Change some fields of a poll (owner or staff)",
        description="`expires_at: null` removes the expiry.",
        request=PollUpdateSerializer(partial=True),
        responses=_write_responses,
    )
    def patch(self, request: Request, poll_id: int) -> Response:
        return self._update(request, poll_id, partial=True)

    @extend_schema(
        operation_id="polls_destroy",
        summary="Delete a poll (owner or staff)",
        request=None,
        responses={
            204: OpenApiResponse(description="Deleted."),
            401: docs.UNAUTHENTICATED,
            403: docs.error("Only the poll's owner or staff can delete it."),
            404: POLL_NOT_FOUND,
        },
    )
    def delete(self, request: Request, poll_id: int) -> Response:
        services.poll_delete(poll_id=poll_id, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PollVoteView(generics.GenericAPIView):
    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = VOTE_THROTTLES  # per user and per client IP (nexus_backend.tracking.throttles)
    serializer_class = VoteCreateSerializer

    @extend_schema(
        operation_id="polls_vote",
        summary="Vote in a poll",
        description="One vote per user per poll; the database enforces it, so concurrent attempts cannot both succeed.",
        parameters=[POLL_ID],
        request=VoteCreateSerializer,
        responses={
            201: VoteSerializer,
            400: docs.validation_error(
                "VoteValidationError",
                ["option"],
                description="`option` is missing, not an integer, or not an option of this poll.",
            ),
            401: docs.UNAUTHENTICATED,
            404: POLL_NOT_FOUND,
            409: docs.conflict(
                "VoteConflict",
                [services.AlreadyVoted.code, services.PollClosed.code],
                "`already_voted`: this user has voted in this poll; `poll_closed`: the poll is closed or expired.",
            ),
        },
    )
    def post(self, request: Request, poll_id: int) -> Response:
        data = VoteCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        vote = services.vote_cast(poll_id=poll_id, option_id=data.validated_data["option"], user=request.user)
        return Response(VoteSerializer(vote).data, status=status.HTTP_201_CREATED)


class PollResultsView(generics.GenericAPIView):
    permission_classes = [permissions.AllowAny]
    serializer_class = PollResultsSerializer

    @extend_schema(
        operation_id="polls_results",
        summary="Votes per option",
        description="Exact and cheap at any scale: each option's counter plus the votes not yet folded into it "
        "(written by each vote's own statement, folded every second), not a `COUNT(*)` over the votes "
        "(see `nexus_backend/polls/counting.py`).",
        parameters=[POLL_ID, cached.CACHE_HEADER_PARAMETER],
        responses={200: PollResultsSerializer, 404: POLL_NOT_FOUND},
    )
    def get(self, request: Request, poll_id: int) -> HttpResponse | Response:
        def compute():
            return selectors.poll_results(poll_id=poll_id).as_dict()

        return cached.respond(request, cached.poll_results(poll_id=poll_id, compute=compute))
