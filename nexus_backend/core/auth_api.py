"""Accounts over HTTP: register, JWT obtain / refresh / verify, logout (blacklists the refresh token).

Registration rules (unique username, password validators) live in ``polls.services.user_register``; the JWT
views are djangorestframework-simplejwt's, annotated so the OpenAPI schema shows their errors.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.urls import path
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
from nexus_backend.core.fields import CharField
from nexus_backend.polls import services
from nexus_backend.tracking.throttles import LOGIN_THROTTLES

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
                description="Invalid field, username taken, or password too weak.",
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
class TokenObtainPairView(jwt_views.TokenObtainPairView):
    throttle_classes = LOGIN_THROTTLES  # 5/min per client IP anonymous, 10/min per user logged in (429)


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


urlpatterns = [
    path("register/", RegisterView.as_view(), name="auth-register"),
    path("token/", TokenObtainPairView.as_view(), name="token-obtain"),
    path("token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("token/verify/", TokenVerifyView.as_view(), name="token-verify"),
    path("logout/", LogoutView.as_view(), name="auth-logout"),
]
