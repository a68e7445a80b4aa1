"""Accounts over HTTP: register, JWT obtain / refresh / verify, logout (blacklists the refresh token), and the
Django admin's login form held to the API login's limits. Routed by ``accounts/urls.py`` (under ``/api/auth/``)
and, for the admin's login form, by ``nexus_backend/urls.py``.

Registration rules (unique username, password validators) live in ``accounts.services.user_register``; the JWT
views are djangorestframework-simplejwt's, annotated so the OpenAPI schema shows their errors.
"""

from __future__ import annotations

import math

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import UntypedToken

from nexus_backend.core import openapi as docs
from nexus_backend.core.serializer_fields import CharField
from nexus_backend.tracking.middleware import log_as
from nexus_backend.tracking.throttles import (
    LOGIN_THROTTLES,
    REGISTER_THROTTLES,
    SlidingWindowThrottle,
    throttles_check,
)

from . import services

User = get_user_model()


class RegisterSerializer(serializers.Serializer):
    username = CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    email = serializers.EmailField()
    password = CharField(write_only=True, max_length=128, trim_whitespace=False)


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email"]
        read_only_fields = fields


class RegisterView(generics.GenericAPIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = REGISTER_THROTTLES  # per client address (IPv6: /64), checked before the password is hashed
    serializer_class = RegisterSerializer

    @extend_schema(
        operation_id="auth_register",
        summary="Create an account",
        request=RegisterSerializer,
        responses={
            201: UserSerializer,
            400: docs.validation_error(
                "RegisterValidationError",
                ["username", "email", "password"],
                description="Invalid field, username taken, or password too weak (at least 12 characters).",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


TOKEN_PAIR = inline_serializer(
    "TokenPair", fields={"access": serializers.CharField(), "refresh": serializers.CharField()}
)
INVALID_TOKEN = docs.error("The token is invalid, expired or blacklisted (code `token_not_valid`).")


@extend_schema_view(
    post=extend_schema(
        operation_id="auth_token_obtain",
        summary="Obtain an access and a refresh token",
        responses={
            200: TOKEN_PAIR,
            400: docs.validation_error("TokenObtainValidationError", ["username", "password"]),
            401: docs.error("No active account with these credentials."),
        },
    )
)
@method_decorator(never_cache, name="dispatch")  # Cache-Control: no-store: tokens stay out of every cache
class TokenObtainPairView(jwt_views.TokenObtainPairView):
    # Failed logins per client address and per target account (tracking/throttles.py), checked before the password
    # is hashed; a bearer token on this request changes nothing (the view authenticates nobody). 429 when either
    # window is full, even for the right password; a successful login gives its slots back.
    throttle_classes = LOGIN_THROTTLES

    def check_throttles(self, request: Request) -> None:
        self.login_throttles: list[SlidingWindowThrottle] = []
        if request.method != "POST":  # only a login attempt counts (any other method is a 405)
            return
        self.login_throttles, wait = throttles_check(request, self.throttle_classes)
        if wait is not None:
            self.throttled(request, wait)

    def post(self, request: Request, *args, **kwargs) -> Response:
        try:
            response = super().post(request, *args, **kwargs)  # a wrong password raises (401)
        except Exception:
            data = request.data  # any JSON value: a list or a string is a 400 too
            log_as(request, user_id=_named_account(data.get(User.USERNAME_FIELD) if isinstance(data, dict) else None))
            raise
        for throttle in self.login_throttles:
            throttle.give_back()
        return response


@extend_schema_view(
    post=extend_schema(
        operation_id="auth_token_refresh",
        summary="Exchange a refresh token for a new pair (the old refresh token is blacklisted)",
        responses={
            200: TOKEN_PAIR,
            400: docs.validation_error("TokenRefreshValidationError", ["refresh"]),
            401: INVALID_TOKEN,
        },
    )
)
@method_decorator(never_cache, name="dispatch")
class TokenRefreshView(jwt_views.TokenRefreshView):
    pass


# A blacklisted (logged-out or rotated) token is refused like any invalid one: 401 `token_not_valid`, as the schema
# says; simplejwt's own serializer answers it with a 400 validation error. (No docstring: it would enter the schema.)
class TokenVerifySerializer(jwt_serializers.TokenVerifySerializer):
    def validate(self, attrs: dict) -> dict:
        token = UntypedToken(attrs["token"])  # bad signature, algorithm, expiry: TokenError, a 401 from the view
        if BlacklistedToken.objects.filter(token__jti=token.get(jwt_settings.JTI_CLAIM)).exists():
            raise TokenError("Token is blacklisted")
        return {}


@extend_schema_view(
    post=extend_schema(
        operation_id="auth_token_verify",
        summary="Check that a token is valid",
        responses={
            200: OpenApiResponse(
                response=inline_serializer("TokenVerified", fields={}), description="Valid: an empty object."
            ),
            400: docs.validation_error("TokenVerifyValidationError", ["token"]),
            401: INVALID_TOKEN,
        },
    )
)
class TokenVerifyView(jwt_views.TokenVerifyView):
    serializer_class = TokenVerifySerializer


@extend_schema_view(
    post=extend_schema(
        operation_id="auth_logout",
        summary="Log out: blacklist a refresh token",
        description="The refresh token can no longer be used; access tokens already issued live until they expire.",
        responses={
            205: OpenApiResponse(description="Logged out (no body)."),
            400: docs.validation_error("LogoutValidationError", ["refresh"]),
            401: INVALID_TOKEN,
        },
    )
)
class LogoutView(jwt_views.TokenBlacklistView):
    def post(self, request: Request, *args, **kwargs) -> Response:
        super().post(request, *args, **kwargs)
        return Response(status=status.HTTP_205_RESET_CONTENT)


def admin_login(request: HttpRequest, **kwargs) -> HttpResponse:
    """The Django admin's login form (``<NEXUS_ADMIN_PATH>login/``) under the API login's limits.

    A POST takes its slots in the per-address and per-account windows before the password is hashed; a full
    window is refused with ``429`` and ``Retry-After`` (even for the right password). A failed attempt re-renders
    the form as Django does (200) but is recorded in the request log as ``401``, so the detector counts it as a
    failed login; a successful one gives its slots back. CSRF is checked first, by the middleware.
    """
    if request.method != "POST":
        return admin.site.login(request, **kwargs)
    throttles, wait = throttles_check(request, LOGIN_THROTTLES)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        response = HttpResponse(
            f"Too many failed logins: try again in {seconds} s.\n", status=429, content_type="text/plain"
        )
        response["Retry-After"] = str(seconds)
        return response
    response = admin.site.login(request, **kwargs)
    if request.user.is_authenticated and response.status_code == 302:
        for throttle in throttles:
            throttle.give_back()
    else:
        log_as(request, status=status.HTTP_401_UNAUTHORIZED, user_id=_named_account(request.POST.get("username")))
    return response


def _named_account(username: object) -> int | None:
    """The id of the account a failed login named (``None`` for a name no account has): the request log records
    it, so the detector sees one account guessed from many addresses (rule ``account_campaign``). Looked up only
    after the limits let the attempt through, as the password check itself does."""
    if not isinstance(username, str) or not username or len(username) > 150:  # 150: the longest username
        return None
    return User._default_manager.filter(**{User.USERNAME_FIELD: username}).values_list("pk", flat=True).first()
