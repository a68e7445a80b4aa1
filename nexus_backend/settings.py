"""Django settings for Nexus: every value comes from the environment, read here and nowhere else.

See ``.env.example`` for the variables. With ``DATABASE_URL`` and ``REDIS_URL`` unset the project uses its
embedded PostgreSQL and Redis (``nexus_backend.infra``).
"""

from __future__ import annotations

import os
import re
import sys
from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab
from csp import constants as csp

from nexus_backend.caching.config import INVALIDATION_STRATEGIES
from nexus_backend.core.logs import FORMATS as LOG_FORMATS
from nexus_backend.core.logs import logging_config
from nexus_backend.infra.embedded import development_secret_key, state_dir
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


# Each reader refuses a value it cannot use with one line that names the variable and says what it takes
# (a typo must not silently turn a switch off or become a traceback at the first request).
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise SystemExit(f"error: {name} must be true or false (1/0, yes/no and on/off work too), got {value!r}")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``, matched without regard to case (``info`` is ``INFO``)."""
    value = os.environ.get(name, "").strip() or default
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise SystemExit(f"error: {name} must be one of {', '.join(choices)}, got {value!r}")


def _env_number(name: str, default, minimum, cast, kind: str):
    raw = os.environ.get(name, "").strip()
    try:
        value = cast(raw) if raw else default
    except ValueError:
        raise SystemExit(f"error: {name} must be {kind}, got {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"error: {name} must be at least {minimum}, got {value}")
    return value


def env_int(name: str, default: int, minimum: int = 0) -> int:
    return _env_number(name, default, minimum, int, "a whole number")


def env_float(name: str, default: float, minimum: float) -> float:
    return _env_number(name, default, minimum, float, "a number")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


ENVIRONMENT = os.environ.get("NEXUS_ENV", "").strip().lower() or "development"  # development | production
if ENVIRONMENT not in ("development", "production"):  # a typo must not fall back to DEBUG=true
    raise SystemExit(f"error: NEXUS_ENV must be development or production, got {ENVIRONMENT!r}")
PRODUCTION = ENVIRONMENT == "production"

DEBUG = env_bool("DEBUG", not PRODUCTION)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1],testserver")


# ---------------------------------------------------------------- Production refusals (README "Production")
def production_problems(*, secret_key: str, debug: bool, allowed_hosts: list[str]) -> list[str]:
    """What stops NEXUS_ENV=production from starting, each saying what to set. The key rule is the one
    `check --deploy` applies (security.W009), plus the placeholders this project once shipped (they say "insecure")."""
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


if PRODUCTION:  # refused here, before any service is resolved or started
    _refused = production_problems(secret_key=SECRET_KEY, debug=DEBUG, allowed_hosts=ALLOWED_HOSTS)
    if _refused:
        print("error: NEXUS_ENV=production refuses to start: " + "; ".join(_refused), file=sys.stderr)
        raise SystemExit(3)  # 3: gunicorn's "worker failed to boot", so the master stops instead of respawning
if "insecure" in SECRET_KEY.lower():  # the placeholders earlier versions shipped are public: refused in any mode
    raise SystemExit(
        "error: SECRET_KEY is a published placeholder (it says 'insecure'): unset it (development makes a random one "
        "in the state folder) or set a new one, e.g. from python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
if not SECRET_KEY:  # development: a random key made on first use, kept in the git-ignored state folder
    SECRET_KEY = development_secret_key()

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
if not PRODUCTION:  # the lab (nexus_lab/: benchmarks, generators, notebook support, developer commands, /bench/bare/)
    INSTALLED_APPS.append("nexus_lab")

MIDDLEWARE = [
    # First: client IP, block list (403 before anything else runs), request log (nexus_backend/tracking).
    "nexus_backend.tracking.middleware.RequestTrackingMiddleware",
    # Request id, JSON errors (never a debug page), request metrics (nexus_backend/core/middleware.py).
    "nexus_backend.core.middleware.RequestContextMiddleware",
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
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
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

# ---------------------------------------------------------------- CORS
CORS_ALLOWED_ORIGINS = env_list(
    "CORS_ALLOWED_ORIGINS", "" if PRODUCTION else "http://localhost:3000,http://localhost:5173"
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# ---------------------------------------------------------------- Counting votes (nexus_backend/polls/counting.py)
POLLS_COUNTING_STRATEGIES = ("count", "counter", "summary", "delta")  # counting.STRATEGIES (a test keeps them equal)
# What the results endpoint and GraphQL read, and how a vote is counted ("delta": exact and lock-free for voters).
POLLS_RESULTS_STRATEGY = env_choice("POLLS_RESULTS_STRATEGY", "delta", POLLS_COUNTING_STRATEGIES)
# How often the fold_vote_deltas task moves pending deltas into the counters (reads stay exact in between; the
# interval bounds how many pending rows a read scans).
POLLS_DELTA_FOLD_SECONDS = env_float("POLLS_DELTA_FOLD_SECONDS", 1.0, 0.1)

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
    "fold-vote-deltas": {  # the "delta" counting strategy (nexus_backend/polls/counting.py)
        "task": "nexus_backend.polls.tasks.fold_vote_deltas",
        "schedule": POLLS_DELTA_FOLD_SECONDS,
        "options": {"expires": max(POLLS_DELTA_FOLD_SECONDS * 5, 5.0)},
    },
    "refresh-vote-summary": {  # the materialised-view counting strategy (nexus_backend/polls/counting.py)
        "task": "nexus_backend.polls.tasks.refresh_vote_summary",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(state_dir() / "celerybeat-schedule")

# ---------------------------------------------------------------- Logging
# JSON lines (production default) or plain text, each record with the request id (nexus_backend/core/logs.py).
NEXUS_LOG_FORMAT = env_choice("NEXUS_LOG_FORMAT", "json" if PRODUCTION else "plain", tuple(LOG_FORMATS))
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOGGING = logging_config(
    log_format=NEXUS_LOG_FORMAT,
    root_level=env_choice("LOG_LEVEL", "WARNING", LOG_LEVELS),
    app_level=env_choice("NEXUS_LOG_LEVEL", "INFO", LOG_LEVELS),
)

NEXUS_PROJECT_ROOT = BASE_DIR

# ---------------------------------------------------------------- Caching
# Poll list/detail/results cached in CACHES["default"] (nexus_backend/caching: keys and TTLs in keys.py).
NEXUS_CACHE = {
    "ENABLED": env_bool("NEXUS_CACHE_ENABLED", True),  # false: every read from the database (benchmark baseline)
    "ALIAS": "default",
    "INVALIDATION": env_choice("NEXUS_CACHE_INVALIDATION", "precise", INVALIDATION_STRATEGIES),
    "TTL": {},  # per-namespace overrides in seconds, e.g. {"poll_results": 60}
    "RETRY_AFTER": 5.0,  # after a Redis error, seconds served from the database before trying Redis again
}
CELERY_BEAT_SCHEDULE["snapshot-cache-metrics"] = {
    "task": "nexus_backend.caching.tasks.snapshot_cache_metrics",
    "schedule": crontab(minute="*"),
}

# ---------------------------------------------------------------- Tracking
# Client IP, request log, block list and rate limits (nexus_backend/tracking; README "Request tracking").


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


# How many reverse proxies on this machine append to X-Forwarded-For (0: use REMOTE_ADDR, ignore the header).
# Applies to requests from a loopback peer only (nexus_backend/tracking/client_ip.py).
NEXUS_TRUSTED_PROXIES = env_int("NEXUS_TRUSTED_PROXIES", 0)
NEXUS_REQUEST_LOGGING = env_logging_mode("NEXUS_REQUEST_LOGGING")  # on | off | sync
NEXUS_REQUEST_LOG_BUFFER_SECONDS = env_float("NEXUS_REQUEST_LOG_BUFFER_SECONDS", 0.25, 0.01)
NEXUS_REQUEST_LOG_FLUSH_SECONDS = env_float("NEXUS_REQUEST_LOG_FLUSH_SECONDS", 5.0, 0.5)
NEXUS_REQUEST_LOG_SPOOL_DIR = os.environ.get("NEXUS_REQUEST_LOG_SPOOL_DIR") or str(state_dir() / "spool" / "requestlog")
NEXUS_REQUEST_LOG_RETENTION_DAYS = env_int("NEXUS_REQUEST_LOG_RETENTION_DAYS", 30, 1)
NEXUS_BLOCKLIST_REFRESH_SECONDS = env_float("NEXUS_BLOCKLIST_REFRESH_SECONDS", 1.0, 0.05)
NEXUS_BLOCKLIST_MAX_AGE_SECONDS = env_float("NEXUS_BLOCKLIST_MAX_AGE_SECONDS", 60.0, 1.0)
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
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    # Failed logins (API token and admin login form), per client address (IPv6: per /64) and per target account:
    # a full window answers 429 with Retry-After, even to the right password (the account's lockout).
    "login_ip": env_rate("NEXUS_RATE_LOGIN_IP", "5/min"),
    "login_account": env_rate("NEXUS_RATE_LOGIN_ACCOUNT", "10/hour"),
    "register_ip": env_rate("NEXUS_RATE_REGISTER_IP", "10/hour"),  # POST /api/auth/register/, per client address
    "vote_user": env_rate("NEXUS_RATE_VOTE_USER", "10/min"),  # POST /api/polls/{id}/vote/, per user
    "vote_ip": env_rate("NEXUS_RATE_VOTE_IP", "200/min"),  # the same, per client address (many accounts, one machine)
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

# ---------------------------------------------------------------- Production hardening (README "Production")
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


def env_proxy_ssl_header(name: str, behind_proxy: bool) -> tuple[str, str] | None:
    """The header a TLS-terminating proxy sets to "https" (Django's SECURE_PROXY_SSL_HEADER). Trusted only behind
    a proxy (it must overwrite what clients send): empty means X-Forwarded-Proto when NEXUS_TRUSTED_PROXIES > 0,
    "off" means never."""
    value = os.environ.get(name, "").strip()
    if value.lower() in ("off", "none", "false", "0"):
        return None
    if not value:
        value = "X-Forwarded-Proto" if behind_proxy else ""
    if not value:
        return None
    if not re.fullmatch(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*", value):
        raise SystemExit(f"error: {name} must be a header name like X-Forwarded-Proto, or off; got {value!r}")
    return ("HTTP_" + value.upper().replace("-", "_"), "https")


SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("NEXUS_PROXY_SSL_HEADER", NEXUS_TRUSTED_PROXIES > 0)


def env_url_prefix(name: str, default: str, taken: tuple[str, ...]) -> str:
    """A path prefix such as "backstage-4f2a/" (no leading slash, one trailing slash) that no other route uses."""
    value = os.environ.get(name, "").strip().strip("/") or default
    if not re.fullmatch(r"[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*", value):
        raise SystemExit(f"error: {name} must be a path like backstage-4f2a/ (letters, digits, . _ ~ -), got {value!r}")
    if value.split("/")[0] in taken:
        raise SystemExit(
            f"error: {name} must not start with {value.split('/')[0]}/, another route uses it; got {value!r}"
        )
    return value + "/"


# Where the Django admin answers (urls.py). Keep "admin/" for development; in production pick a path of your own
# so scanners probing /admin/ find a 404.
NEXUS_ADMIN_PATH = env_url_prefix("NEXUS_ADMIN_PATH", "admin", taken=("api", "graphql", "health", "bench", "static"))

# ---------------------------------------------------------------- Logs and metrics
# Prometheus /metrics (nexus_backend/core/metrics.py; README "Logs and metrics"). Readable by clients in these
# networks (comma-separated addresses or CIDRs; default loopback in development, nobody in production) or with
# `Authorization: Bearer <NEXUS_METRICS_TOKEN>` (empty: no token accepted).


def env_networks(name: str, default: str) -> list:
    import ipaddress

    try:
        return [ipaddress.ip_network(item, strict=False) for item in env_list(name, default)]
    except ValueError as exc:
        raise SystemExit(f"error: {name} must be addresses or networks like 10.0.0.0/8, ::1 ({exc})") from None


# Networks of reverse proxies elsewhere (a load balancer): a peer inside them is trusted to write X-Forwarded-For.
NEXUS_TRUSTED_PROXY_NETWORKS = env_networks("NEXUS_TRUSTED_PROXY_NETWORKS", "")
NEXUS_METRICS_ALLOWED_IPS = env_networks("NEXUS_METRICS_ALLOWED_IPS", "" if PRODUCTION else "127.0.0.1,::1")
NEXUS_METRICS_TOKEN = os.environ.get("NEXUS_METRICS_TOKEN", "").strip()

# ---------------------------------------------------------------- Static files under gunicorn
# gunicorn serves no static files, so under it (the Docker image, `manage.py bench`) Swagger UI, ReDoc, GraphiQL
# and the admin loaded no CSS or JavaScript. WhiteNoise serves them from the app: from STATIC_ROOT
# (`manage.py collectstatic`, done in the Dockerfile) and, with DEBUG on, straight from the apps' static folders.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "whitenoise.middleware.WhiteNoiseMiddleware"
)
# Where collectstatic writes and WhiteNoise reads (default <project>/staticfiles). The browser tests collect into a
# temporary folder instead: WhiteNoise indexes a filled STATIC_ROOT whenever it starts, and every Django test client
# starts it again (~60 ms each), which would slow the rest of the suite.
STATIC_ROOT = Path(os.environ.get("NEXUS_STATIC_ROOT") or STATIC_ROOT)
# collectstatic also writes a gzip copy of each file (brotli too where the package is installed) and WhiteNoise
# serves it to clients that accept it: GraphiQL's 3.5 MB of JavaScript goes out as about 0.7 MB. File names do not
# change (no manifest), so nothing needs collectstatic to have run first.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# ---------------------------------------------------------------- Faults: outbox and redelivery
# Tasks a write asks for go through the transactional outbox (nexus_backend/core/outbox.py; README "Faults the
# suite survives"): a broker that is down delays them, never loses them. Tasks that are safe to run twice say so
# per task (acks_late=True, reject_on_worker_lost=True), so a worker killed mid-task has it delivered again.
NEXUS_OUTBOX_RELAY_SECONDS = env_float("NEXUS_OUTBOX_RELAY_SECONDS", 10.0, 1.0)
NEXUS_OUTBOX_KEEP_DAYS = env_int("NEXUS_OUTBOX_KEEP_DAYS", 7, 1)
CELERY_BEAT_SCHEDULE["relay-outbox"] = {
    "task": "nexus_backend.core.tasks.relay_outbox",
    "schedule": NEXUS_OUTBOX_RELAY_SECONDS,
    "options": {"expires": NEXUS_OUTBOX_RELAY_SECONDS * 2},  # one relay publishes every pending row
}

# ---------------------------------------------------------------- Hardening: request bodies, GraphQL limits, OpenAPI
# Bodies, parsers and query limits checked by the fuzz, body-limit and GraphQL-limit tests (README "Hardening").
# Larger bodies are refused with 413 from Content-Length alone, before they are read (core/middleware.py); placed
# after the request-context middleware so a 413 carries the request id and is counted in the metrics.
NEXUS_MAX_BODY_BYTES = env_int("NEXUS_MAX_BODY_BYTES", 1024 * 1024, 1)
DATA_UPLOAD_MAX_MEMORY_SIZE = NEXUS_MAX_BODY_BYTES  # request.body (GraphQL, forms) read past it: 413 too
MIDDLEWARE.insert(
    MIDDLEWARE.index("nexus_backend.core.middleware.RequestContextMiddleware") + 1,
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

# ---------------------------------------------------------------- Bounded input (docs/security.md)
# A poll's expiry at most this many days ahead (each expiry is a Celery ETA task; year 9999 is refused with 400).
NEXUS_POLL_MAX_LIFETIME_DAYS = env_int("NEXUS_POLL_MAX_LIFETIME_DAYS", 365, 1)
# ?search= on the poll list: at most this many words and characters (400 on `search` beyond them).
NEXUS_SEARCH_MAX_TERMS = env_int("NEXUS_SEARCH_MAX_TERMS", 5, 1)
NEXUS_SEARCH_MAX_LENGTH = env_int("NEXUS_SEARCH_MAX_LENGTH", 100, 1)
# Username prefixes sign-up refuses (400 on username): generated users are rebuilt and removed by prefix, and the
# demo password is published. Development leaves tour_ to the tour notebook, which signs up tour_ada on the API.
NEXUS_RESERVED_USERNAME_PREFIXES = [
    p.lower()
    for p in env_list("NEXUS_RESERVED_USERNAME_PREFIXES", "demo_,tour_,bench_" if PRODUCTION else "demo_,bench_")
]

# ---------------------------------------------------------------- Browser pages: GraphiQL, introspection, CSP
# GraphiQL keeps bearer tokens in the browser, and introspection hands out the whole schema: both on in
# development, off in production unless set (introspection follows NEXUS_GRAPHIQL unless set on its own).
NEXUS_GRAPHIQL = env_bool("NEXUS_GRAPHIQL", not PRODUCTION)
NEXUS_GRAPHQL_INTROSPECTION = env_bool("NEXUS_GRAPHQL_INTROSPECTION", NEXUS_GRAPHIQL)
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
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "csp.middleware.CSPMiddleware")
