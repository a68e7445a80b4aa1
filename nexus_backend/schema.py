"""The GraphQL schema and its HTTP view (``/graphql/``).

Authentication, like the REST API: ``Authorization: Bearer <access token>`` (simplejwt) or a Django session.
Session-authenticated POSTs must pass Django's CSRF check (GraphiQL sends the token from the ``csrftoken``
cookie); JWT requests need no CSRF token. An invalid or expired bearer token is answered 401.
"""

from __future__ import annotations

import logging
from functools import partial

import strawberry
from cross_web import HTTPException
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from rest_framework.authentication import CSRFCheck
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from strawberry.django.views import GraphQLView
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)

from nexus_backend.polls.graphql import Mutation, Query

logger = logging.getLogger(__name__)


def _is_unexpected(error: GraphQLError) -> bool:
    """Mask errors that are not ours to explain (a bug, a database failure); keep domain and syntax errors."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


class NexusSchema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        # Refusals (already voted, closed poll, bad id) are answers, not incidents: log only the unexpected.
        for error in errors:
            if _is_unexpected(error):
                logger.error("GraphQL resolver failed", exc_info=error.original_error)


# Cost limits, read from settings on every request (NEXUS_GRAPHQL_MAX_*): a query nested too deep, with too many
# aliases (one field asked for 1,000 times) or too long is refused before any resolver runs, with HTTP 200 and
# a GraphQL error naming the limit (GraphQL over HTTP: a document that fails validation is still answered 200).
LIMITS = [
    lambda: MaxTokensLimiter(max_token_count=settings.NEXUS_GRAPHQL_MAX_TOKENS),
    lambda: QueryDepthLimiter(max_depth=settings.NEXUS_GRAPHQL_MAX_DEPTH),
    lambda: MaxAliasesLimiter(max_alias_count=settings.NEXUS_GRAPHQL_MAX_ALIASES),
    # __schema / __type refused unless NEXUS_GRAPHQL_INTROSPECTION (off in production); __typename still answers.
    lambda: AddValidationRules([] if settings.NEXUS_GRAPHQL_INTROSPECTION else [NoSchemaIntrospectionCustomRule]),
]
schema = NexusSchema(
    query=Query, mutation=Mutation, extensions=[*LIMITS, partial(MaskErrors, should_mask_error=_is_unexpected)]
)


def _error(message: str, code: str, status: int) -> JsonResponse:
    return JsonResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status=status)


@method_decorator(csrf_exempt, name="dispatch")  # CSRF is checked below, for session users only
class NexusGraphQLView(GraphQLView):
    def dispatch(self, request: HttpRequest, *args, **kwargs):
        # GraphiQL only where NEXUS_GRAPHIQL (off in production): otherwise a browser's GET without a query gets
        # the same 400 as any client's.
        self.graphql_ide = "graphiql" if settings.NEXUS_GRAPHIQL else None
        try:
            authenticated = JWTAuthentication().authenticate(request)
        except AuthenticationFailed as exc:
            return _error(f"Invalid bearer token: {exc.detail}", "token_not_valid", 401)
        if request.method == "GET":
            get_token(request)  # sets the csrftoken cookie GraphiQL sends back on its POSTs
        if authenticated is not None:
            request.user = authenticated[0]
        elif request.user.is_authenticated and request.method not in ("GET", "HEAD", "OPTIONS"):
            check = CSRFCheck(lambda _request: None)
            check.process_request(request)
            reason = check.process_view(request, None, (), {})
            if reason:
                return _error(f"CSRF failed: {reason}", "csrf_failed", 403)
        if request.method == "POST":
            try:
                request.body.decode()  # strawberry decodes it unguarded: invalid UTF-8 was a 500
            except UnicodeDecodeError:
                return _error("The request body is not valid UTF-8.", "bad_request", 400)
        try:
            return self.run(request=request)
        except HTTPException as exc:  # strawberry answers these in text/plain; the project's errors are JSON
            codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
            code = codes.get(exc.status_code, "bad_request")
            return _error(exc.reason, code, exc.status_code)

    def render_graphql_ide(self, request: HttpRequest) -> HttpResponse:
        """GraphiQL from the project's static files (strawberry's page loads it from unpkg.com, which breaks
        offline and sends every visitor's browser to a CDN)."""
        return HttpResponse(render_to_string("graphql/nexus_graphiql.html", request=request))
