"""Secrets, hosts, HTTPS, headers, CORS, the admin's path and who may read /metrics (docs/security.md,
docs/operations.md "Production").

Production defaults are strict and development ones work on plain http://localhost; each variable can override
its default. ``production.py`` refuses to start on what :func:`production_problems` reports.
"""

from __future__ import annotations

import os

from csp import constants as csp

from nexus_backend.infra.embedded import development_secret_key

from .env import PRODUCTION, env_bool, env_int, env_list, env_networks, env_url_prefix

DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1],testserver")


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "")
    if PRODUCTION:  # a missing, weak or placeholder key is one of production.py's refusals (exit 3)
        return key
    if "insecure" in key.lower():  # the placeholders earlier versions shipped are public
        raise SystemExit(
            "error: SECRET_KEY is a published placeholder (it says 'insecure'): unset it (development makes a random "
            "one in the state folder) or set a new one, e.g. from python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))'"
        )
    return key or development_secret_key()  # a random key made on first use, kept in the git-ignored state folder


SECRET_KEY = _secret_key()


def production_problems(*, secret_key: str, debug: bool, allowed_hosts: list[str]) -> list[str]:
    """What stops NEXUS_ENV=production from starting, each saying what to set. The key rule is the one
    `check --deploy` applies (security.W009), plus the placeholders this project once shipped (they say "insecure")."""
    # Imported here, not at the top: an upper-case name at module level would become a setting (base.py imports *).
    from django.core.checks.security.base import (
        SECRET_KEY_INSECURE_PREFIX,
        SECRET_KEY_MIN_LENGTH,
        SECRET_KEY_MIN_UNIQUE_CHARACTERS,
    )

    generate = "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    problems = []
    if not secret_key:
        problems.append(f"SECRET_KEY is not set (set it to a random value, e.g. from {generate})")
    elif len(secret_key) < SECRET_KEY_MIN_LENGTH or len(set(secret_key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        problems.append(
            f"SECRET_KEY is too weak ({len(secret_key)} characters, {len(set(secret_key))} distinct; needs at least "
            f"{SECRET_KEY_MIN_LENGTH} and {SECRET_KEY_MIN_UNIQUE_CHARACTERS}: set a new one, e.g. from {generate})"
        )
    elif secret_key.startswith(SECRET_KEY_INSECURE_PREFIX) or "insecure" in secret_key.lower():
        problems.append(f"SECRET_KEY is a placeholder that says 'insecure' (set a new one, e.g. from {generate})")
    if debug:
        problems.append("DEBUG is true (unset DEBUG or set DEBUG=false: debug pages show settings and code)")
    if not allowed_hosts:
        problems.append("ALLOWED_HOSTS is empty (set ALLOWED_HOSTS to the comma-separated host names served)")
    return problems


def service_url_problems(env=os.environ) -> list[str]:
    """Production never starts the embedded servers: the database, cache and broker must be named."""
    missing = [name for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL") if not env.get(name, "").strip()]
    if not missing:
        return []
    return [
        f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set (production never starts the embedded "
        "servers: point DATABASE_URL, REDIS_URL and CELERY_BROKER_URL at the real PostgreSQL, Redis and broker)"
    ]


CORS_ALLOWED_ORIGINS = env_list(
    "CORS_ALLOWED_ORIGINS", "" if PRODUCTION else "http://localhost:3000,http://localhost:5173"
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
CSRF_FAILURE_VIEW = "nexus_backend.core.exceptions.csrf_failure"  # JSON 403, never Django's HTML page

# HTTPS only in production: secure cookies, HSTS, redirect to https. Off in development (plain http://localhost).
# `NEXUS_ENV=production python manage.py check --deploy` passes with no warnings on these defaults.
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^health/$"]  # load balancers and the compose healthcheck probe over plain http
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)  # the header only; joining the list is manual
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# SECURE_PROXY_SSL_HEADER follows the trusted proxies (tracking.py).

# Where the Django admin answers (urls.py). Keep "admin/" for development; in production pick a path of your own
# so scanners probing /admin/ find a 404.
NEXUS_ADMIN_PATH = env_url_prefix("NEXUS_ADMIN_PATH", "admin", taken=("api", "graphql", "health", "bench", "static"))

# Prometheus /metrics (nexus_backend/ops.py; docs/operations.md). Readable by clients in these networks
# (comma-separated addresses or CIDRs; default loopback in development, nobody in production) or with
# `Authorization: Bearer <NEXUS_METRICS_TOKEN>` (empty: no token accepted).
NEXUS_METRICS_ALLOWED_IPS = env_networks("NEXUS_METRICS_ALLOWED_IPS", "" if PRODUCTION else "127.0.0.1,::1")
NEXUS_METRICS_TOKEN = os.environ.get("NEXUS_METRICS_TOKEN", "").strip()

# Larger bodies are refused with 413 from Content-Length alone, before they are read (core/middleware.py).
NEXUS_MAX_BODY_BYTES = env_int("NEXUS_MAX_BODY_BYTES", 1024 * 1024, 1)
DATA_UPLOAD_MAX_MEMORY_SIZE = NEXUS_MAX_BODY_BYTES  # request.body (GraphQL, forms) read past it: 413 too

# A Content-Security-Policy on every response (django-csp): scripts only from this site or inline with the
# response's nonce (GraphiQL's and ReDoc's templates carry it), nothing framed, no plugins, requests only to this
# site. Inline styles stay allowed: GraphiQL, Swagger UI and ReDoc set them at run time.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF, csp.UNSAFE_INLINE],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF, "data:"],
        "connect-src": [csp.SELF],
        "worker-src": [csp.SELF, "blob:"],  # ReDoc's search runs in a worker made from a blob
        "object-src": [csp.NONE],
        "base-uri": [csp.NONE],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}
