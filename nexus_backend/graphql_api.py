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
from graphql import FieldNode, GraphQLError, OperationType
from graphql.utilities import get_operation_ast
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
    SchemaExtension,
)

from nexus_backend.polls.graphql import Mutation, Query
from nexus_backend.tracking.middleware import log_as

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


def operation_log_entry(execution_context) -> tuple[str, int]:
    """The path and status the request log records for a GraphQL operation, as REST would have logged it.

    Path: ``/graphql/<query|mutation>/<first field>`` (``/graphql/mutation/vote``), field names as the schema
    spells them, aliases ignored. Status: the first error's (a refusal carries its REST status: 400 invalid,
    401, 403, 404, 409 already voted, 429 throttled), 400 for a document that does not parse or validate (cost
    limits included), 500 for an unexpected failure; otherwise 201 for a mutation (a vote is created), 200 for a
    query. A document with several operations and no ``operationName`` is logged as ``/graphql/`` 400.
    """
    document = execution_context.graphql_document
    operation = get_operation_ast(document, execution_context.operation_name) if document else None
    if operation is None:
        return "/graphql/", 400
    fields = [node.name.value for node in operation.selection_set.selections if isinstance(node, FieldNode)]
    path = f"/graphql/{operation.operation.value}/{fields[0] if fields else '-'}"
    # A refusal raised in a resolver carries its status; parse and validation errors (cost limits too) carry none.
    errors = getattr(execution_context.result, "errors", None) or execution_context.pre_execution_errors or []
    for error in errors:
        if _is_unexpected(error):
            return path, 500
        return path, int((error.extensions or {}).get("status", 400))
    return path, 201 if operation.operation is OperationType.MUTATION else 200


class OperationLog(SchemaExtension):
    """Hands :func:`operation_log_entry` to the request log (``tracking.middleware.log_as``)."""

    def on_operation(self):
        yield
        context = self.execution_context.context
        request = getattr(context, "request", None)
        if request is not None:
            path, status = operation_log_entry(self.execution_context)
            log_as(request, path=path, status=status)


# OperationLog last: its code after the operation runs before MaskErrors', so it sees unexpected errors unmasked.
schema = NexusSchema(
    query=Query,
    mutation=Mutation,
    extensions=[*LIMITS, partial(MaskErrors, should_mask_error=_is_unexpected), OperationLog],
)


def _error(message: str, code: str, status: int) -> JsonResponse:
    return JsonResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status=status)


@method_decorator(csrf_exempt, name="dispatch")  # CSRF is checked below, for session users only
class AuthenticatedGraphQLView(GraphQLView):
    def dispatch(self, request: HttpRequest, *args, **kwargs):
        # GraphiQL only where NEXUS_GRAPHIQL (off in production): otherwise a browser's GET without a query gets
        # the same 400 as any client's.
        self.graphql_ide = "graphiql" if settings.NEXUS_GRAPHIQL else None
        try:
            # A plain HttpRequest: simplejwt reads only its Authorization header, which both request types have.
            authenticated = JWTAuthentication().authenticate(request)  # type: ignore[arg-type]
        except AuthenticationFailed as exc:
            return _error(f"Invalid bearer token: {exc.detail}", "token_not_valid", 401)
        if request.method == "GET":
            get_token(request)  # sets the csrftoken cookie GraphiQL sends back on its POSTs
        if authenticated is not None:
            request.user = authenticated[0]  # type: ignore[assignment]  # an AUTH_USER_MODEL instance
        elif request.user.is_authenticated and request.method not in ("GET", "HEAD", "OPTIONS"):
            # DRF's own SessionAuthentication.enforce_csrf way: no response and no view to call, only the check.
            check = CSRFCheck(lambda _request: None)  # type: ignore[arg-type]
            check.process_request(request)
            reason = check.process_view(request, None, (), {})  # type: ignore[arg-type]
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
