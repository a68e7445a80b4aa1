"""Django settings for Nexus: every value comes from the environment, read here and nowhere else.

See ``.env.example`` for the variables. With ``DATABASE_URL`` and ``REDIS_URL`` unset the project uses its
embedded PostgreSQL and Redis (``nexus_backend.infra``).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab

from nexus_backend.infra.embedded import state_dir
from nexus_backend.infra.services import resolve

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_file(path: Path) -> None:
    """Load KEY=VALUE lines from .env (if present) without overriding the real environment."""
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        os.environ.setdefault(key.strip(), value.strip().strip('"').strip("'"))


_env_file(BASE_DIR / ".env")


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


ENVIRONMENT = os.environ.get("NEXUS_ENV", "development")  # development | production
PRODUCTION = ENVIRONMENT == "production"

DEBUG = env_bool("DEBUG", not PRODUCTION)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise SystemExit("error: SECRET_KEY must be set when NEXUS_ENV=production")
    SECRET_KEY = "dev-only-insecure-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1],testserver")

SERVICES = resolve()
NEXUS_SERVICE_MODE = SERVICES.mode

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "strawberry_django",
    "nexus_backend.core",
    "nexus_backend.polls",
    "nexus_backend.tracking",
    "nexus_backend.caching",
]

MIDDLEWARE = [
    # First: client IP, block list (403 before anything else runs), request log (nexus_backend/tracking).
    "nexus_backend.tracking.middleware.RequestTrackingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "nexus_backend.urls"
WSGI_APPLICATION = "nexus_backend.wsgi.application"
ASGI_APPLICATION = "nexus_backend.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": SERVICES.database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": SERVICES.redis_url,
        "KEY_PREFIX": os.environ.get("NEXUS_CACHE_PREFIX", "nexus"),
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
        },
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# ---------------------------------------------------------------- REST framework, JWT, OpenAPI
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
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "nexus_backend.core.exceptions.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + ([] if PRODUCTION else ["rest_framework.renderers.BrowsableAPIRenderer"]),
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=int(os.environ.get("JWT_ACCESS_MINUTES", "15"))),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=int(os.environ.get("JWT_REFRESH_DAYS", "7"))),
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

# ---------------------------------------------------------------- CORS
CORS_ALLOWED_ORIGINS = env_list(
    "CORS_ALLOWED_ORIGINS", "" if PRODUCTION else "http://localhost:3000,http://localhost:5173"
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# ---------------------------------------------------------------- Celery
CELERY_BROKER_URL = SERVICES.broker_url
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", SERVICES.redis_url)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE = {
    "close-expired-polls": {
        "task": "nexus_backend.polls.tasks.close_expired_polls",
        "schedule": crontab(minute="*"),
    },
    "refresh-vote-summary": {  # the materialised-view counting strategy (nexus_backend/polls/counting.py)
        "task": "nexus_backend.polls.tasks.refresh_vote_summary",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(state_dir() / "celerybeat-schedule")

# ---------------------------------------------------------------- Logging
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {
        "nexus_backend": {"level": os.environ.get("NEXUS_LOG_LEVEL", "INFO"), "propagate": True},
    },
}

NEXUS_PROJECT_ROOT = BASE_DIR

# ---------------------------------------------------------------- Caching
# Poll list/detail/results cached in CACHES["default"] (nexus_backend/caching: keys and TTLs in keys.py).
NEXUS_CACHE = {
    "ENABLED": env_bool("NEXUS_CACHE_ENABLED", True),  # false: every read from the database (benchmark baseline)
    "ALIAS": "default",
    "INVALIDATION": os.environ.get("NEXUS_CACHE_INVALIDATION", "precise"),  # precise | global | ttl
    "TTL": {},  # per-namespace overrides in seconds, e.g. {"poll_results": 60}
    "RETRY_AFTER": 5.0,  # after a Redis error, seconds served from the database before trying Redis again
}
CELERY_BEAT_SCHEDULE["snapshot-cache-metrics"] = {
    "task": "nexus_backend.caching.tasks.snapshot_cache_metrics",
    "schedule": crontab(minute="*"),
}

# ---------------------------------------------------------------- Tracking
# Client IP, request log, block list and rate limits (nexus_backend/tracking; README "Request tracking").


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"error: {name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"error: {name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"error: {name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"error: {name} must be at least {minimum}, got {value}")
    return value


def env_rate(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip() or default
    count, _, period = value.partition("/")
    if not (
        count.isdigit()
        and int(count) > 0
        and period in ("s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day")
    ):
        raise SystemExit(f"error: {name} must be a rate like 5/min, 100/hour or 2/s, got {value!r}")
    return value


def env_logging_mode(name: str) -> str:
    value = os.environ.get(name, "on").strip().lower() or "on"
    value = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}.get(value, value)
    if value not in ("on", "off", "sync"):
        raise SystemExit(f"error: {name} must be on, off or sync (sync: the slow per-request INSERT), got {value!r}")
    return value


# How many reverse proxies in front of the app append to X-Forwarded-For (0: use REMOTE_ADDR, ignore the header).
NEXUS_TRUSTED_PROXIES = env_int("NEXUS_TRUSTED_PROXIES", 0)
NEXUS_REQUEST_LOGGING = env_logging_mode("NEXUS_REQUEST_LOGGING")  # on | off | sync
NEXUS_REQUEST_LOG_BUFFER_SECONDS = env_float("NEXUS_REQUEST_LOG_BUFFER_SECONDS", 0.25, 0.01)
NEXUS_REQUEST_LOG_FLUSH_SECONDS = env_float("NEXUS_REQUEST_LOG_FLUSH_SECONDS", 5.0, 0.5)
NEXUS_REQUEST_LOG_SPOOL_DIR = os.environ.get("NEXUS_REQUEST_LOG_SPOOL_DIR") or str(state_dir() / "spool" / "requestlog")
NEXUS_REQUEST_LOG_RETENTION_DAYS = env_int("NEXUS_REQUEST_LOG_RETENTION_DAYS", 30, 1)
NEXUS_BLOCKLIST_REFRESH_SECONDS = env_float("NEXUS_BLOCKLIST_REFRESH_SECONDS", 1.0, 0.05)
NEXUS_BLOCKLIST_MAX_AGE_SECONDS = env_float("NEXUS_BLOCKLIST_MAX_AGE_SECONDS", 60.0, 1.0)
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "login_anon": env_rate("NEXUS_RATE_LOGIN_ANON", "5/min"),  # POST /api/auth/token/, per client IP
    "login_user": env_rate("NEXUS_RATE_LOGIN_USER", "10/min"),  # the same, by a logged-in user, per user
    "vote_user": env_rate("NEXUS_RATE_VOTE_USER", "10/min"),  # POST /api/polls/{id}/vote/, per user
    "vote_ip": env_rate("NEXUS_RATE_VOTE_IP", "200/min"),  # the same, per client IP (many accounts, one machine)
}
CELERY_BEAT_SCHEDULE["flush-request-logs"] = {
    "task": "nexus_backend.tracking.tasks.flush_request_logs",
    "schedule": NEXUS_REQUEST_LOG_FLUSH_SECONDS,
    "options": {"expires": NEXUS_REQUEST_LOG_FLUSH_SECONDS * 2},  # a backlog of flushes is pointless
}
CELERY_BEAT_SCHEDULE["prune-request-logs"] = {
    "task": "nexus_backend.tracking.tasks.prune_request_logs",
    "schedule": crontab(hour=3, minute=17),
}

# ---------------------------------------------------------------- Detection
# Suspicious-IP detection (nexus_backend/tracking/detection; README "Suspicious-IP detection").
# A rules file laid over nexus_backend/tracking/detection/rules.yaml (empty: the defaults).
NEXUS_DETECTION_RULES = os.environ.get("NEXUS_DETECTION_RULES", "").strip()
# true: findings of rules marked `block: true` also block the address for the rule's block_minutes.
NEXUS_DETECTION_AUTO_BLOCK = env_bool("NEXUS_DETECTION_AUTO_BLOCK", False)
CELERY_BEAT_SCHEDULE["detect-suspicious-ips"] = {
    "task": "nexus_backend.tracking.tasks.detect_suspicious_ips",
    "schedule": crontab(minute=5),  # hourly, once the last hour's request logs have been flushed
    "options": {"expires": 3000},
}

# ---------------------------------------------------------------- Hardening: request bodies, GraphQL limits, OpenAPI
# Bodies, parsers and query limits checked by the fuzz, body-limit and GraphQL-limit tests (README "Hardening").
# Larger bodies are refused with 413 from Content-Length alone, before they are read (core/middleware.py).
NEXUS_MAX_BODY_BYTES = env_int("NEXUS_MAX_BODY_BYTES", 1024 * 1024, 1)
DATA_UPLOAD_MAX_MEMORY_SIZE = NEXUS_MAX_BODY_BYTES  # request.body (GraphQL, forms) read past it: 413 too
MIDDLEWARE.insert(
    MIDDLEWARE.index("nexus_backend.tracking.middleware.RequestTrackingMiddleware") + 1,
    "nexus_backend.core.middleware.BodySizeLimitMiddleware",
)
# The API speaks JSON only: a form or multipart body is 415, and the schema documents application/json alone.
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["rest_framework.parsers.JSONParser"]
# Shared refusals (401/403/413/415/429) documented on every operation that can give them (core/openapi.py).
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "nexus_backend.core.openapi.NexusAutoSchema"
CSRF_FAILURE_VIEW = "nexus_backend.core.exceptions.csrf_failure"  # JSON 403, never Django's HTML page
# GraphQL (nexus_backend/schema.py): deeper, more aliased or longer queries are refused before they run.
NEXUS_GRAPHQL_MAX_DEPTH = env_int("NEXUS_GRAPHQL_MAX_DEPTH", 8, 1)
NEXUS_GRAPHQL_MAX_ALIASES = env_int("NEXUS_GRAPHQL_MAX_ALIASES", 15, 1)
NEXUS_GRAPHQL_MAX_TOKENS = env_int("NEXUS_GRAPHQL_MAX_TOKENS", 2000, 10)
