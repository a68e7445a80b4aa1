"""REST framework, JWT (simplejwt) and the OpenAPI schema (drf-spectacular)."""

from __future__ import annotations

import os
from datetime import timedelta

from .env import PRODUCTION, env_int, env_rate
from .security import SECRET_KEY

# The former login rates (per address anonymous, per user with a bearer token) must not be silently ignored.
for _old, _new in (
    ("NEXUS_RATE_LOGIN_ANON", "NEXUS_RATE_LOGIN_IP"),
    ("NEXUS_RATE_LOGIN_USER", "NEXUS_RATE_LOGIN_ACCOUNT"),
):
    if os.environ.get(_old, "").strip():
        raise SystemExit(
            f"error: {_old} is no longer read: failed logins are limited per address (NEXUS_RATE_LOGIN_IP) and per "
            f"account (NEXUS_RATE_LOGIN_ACCOUNT) whatever the request carries; set {_new} instead"
        )

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "nexus_backend.core.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    # Shared refusals (401/403/413/415/429) documented on every operation that can give them (core/openapi.py).
    "DEFAULT_SCHEMA_CLASS": "nexus_backend.core.openapi.NexusAutoSchema",
    "EXCEPTION_HANDLER": "nexus_backend.core.exceptions.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + ([] if PRODUCTION else ["rest_framework.renderers.BrowsableAPIRenderer"]),
    "DEFAULT_THROTTLE_RATES": {
        # Failed logins (API token and admin login form), per client address (IPv6: per /64) and per target
        # account: a full window answers 429 with Retry-After, even to the right password (the account's lockout).
        "login_ip": env_rate("NEXUS_RATE_LOGIN_IP", "5/min"),
        "login_account": env_rate("NEXUS_RATE_LOGIN_ACCOUNT", "10/hour"),
        "register_ip": env_rate("NEXUS_RATE_REGISTER_IP", "10/hour"),  # POST /api/auth/register/, per address
        "vote_user": env_rate("NEXUS_RATE_VOTE_USER", "10/min"),  # POST /api/polls/{id}/vote/, per user
        "vote_ip": env_rate("NEXUS_RATE_VOTE_IP", "200/min"),  # the same, per address (many accounts, one machine)
    },
    # The API speaks JSON only: a form or multipart body is 415, and the schema documents application/json alone.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15, 1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7, 1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Nexus Online Poll System API",
    "DESCRIPTION": "Polls, options, votes and results. JWT auth: POST /api/auth/token/ then "
    "`Authorization: Bearer <access>`. GraphQL lives at /graphql/.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
