from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from nexus_backend import ops
from nexus_backend.accounts import api as accounts_api
from nexus_backend.core import exceptions as core_exceptions
from nexus_backend.graphql_api import AuthenticatedGraphQLView, schema

api_patterns: list[URLPattern | URLResolver] = [
    path("auth/", include("nexus_backend.accounts.urls")),
    path("", include("nexus_backend.polls.api.urls")),
    path("metrics/", include("nexus_backend.caching.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file of its own (?script): no inline script, so the
    # Content-Security-Policy needs no exception for it.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    # Our template: drf-spectacular's, minus its Google Fonts and ReDoc's CDN logo (works offline).
    path("redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="nexus/redoc.html"), name="redoc"),
    # Anything else under /api/ is a JSON 404 even with DEBUG on (non-numeric ids, unknown paths).
    re_path(r"^.*/$", core_exceptions.json_404),
]

urlpatterns = [
    # The admin's login form under the API login's limits (accounts/api.py), before the admin's own routes.
    path(f"{settings.NEXUS_ADMIN_PATH}login/", accounts_api.admin_login, name="admin-login"),
    path(settings.NEXUS_ADMIN_PATH, admin.site.urls),  # NEXUS_ADMIN_PATH, "admin/" by default
    path("health/", ops.health, name="health"),
    # Prometheus scrape target (not part of the API schema: a plain Django view; docs/operations.md).
    re_path(r"^metrics/?$", ops.metrics_view, name="metrics"),
    path("api/", include(api_patterns)),
    path("graphql/", AuthenticatedGraphQLView.as_view(schema=schema), name="graphql"),
]

if apps.is_installed("nexus_lab"):  # the benchmarks' baseline (/bench/bare/); a deployment has no use for it
    urlpatterns.append(path("", include("nexus_lab.urls")))

handler400 = "nexus_backend.core.exceptions.json_400"
handler403 = "nexus_backend.core.exceptions.json_403"
handler404 = "nexus_backend.core.exceptions.json_404"
handler500 = "nexus_backend.core.exceptions.json_500"
