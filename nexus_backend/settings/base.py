"""What every environment shares: Django's own settings, then each component's module (one file per concern).

Each value is assigned once, in one of these modules. Defaults that differ between development and production
are picked in the component modules from ``PRODUCTION`` (env.py, from NEXUS_ENV); development.py and production.py
hold what each environment does on top (production's refusals to start).
"""

from __future__ import annotations

import os
from pathlib import Path

# isort: off
# Order matters: the settings that only read the environment come first, so a bad value is refused before
# any server starts.
from .env import *  # noqa: F403
from .env import BASE_DIR
from .security import *  # noqa: F403
from .tracking import *  # noqa: F403
from .polls import *  # noqa: F403
from .graphql import *  # noqa: F403
from .logging import *  # noqa: F403
from .drf import *  # noqa: F403

# Then the services (embedded ones started here in development) and what is built on them.
from .database import *  # noqa: F403
from .caching import *  # noqa: F403
from .celery import *  # noqa: F403
# isort: on

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
    "nexus_backend.accounts",
    "nexus_backend.polls",
    "nexus_backend.tracking",
    "nexus_backend.caching",
]

MIDDLEWARE = [
    # First: client IP, block list (403 before anything else runs), request log (nexus_backend/tracking).
    "nexus_backend.tracking.middleware.RequestTrackingMiddleware",
    # Request id, JSON errors (never a debug page), request metrics (nexus_backend/core/middleware.py).
    "nexus_backend.core.middleware.RequestContextMiddleware",
    # Bodies over NEXUS_MAX_BODY_BYTES: 413 from Content-Length alone, with the request id, counted in the metrics.
    "nexus_backend.core.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # CONTENT_SECURITY_POLICY (security.py)
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files under gunicorn (STATIC_ROOT below)
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

NEXUS_PROJECT_ROOT = BASE_DIR

# Static files. gunicorn serves none, so WhiteNoise serves them from the app: from STATIC_ROOT (`manage.py
# collectstatic`, done in the Dockerfile) and, with DEBUG on, straight from the apps' static folders. The browser
# tests collect into a temporary folder instead (NEXUS_STATIC_ROOT): WhiteNoise indexes a filled STATIC_ROOT
# whenever it starts, and every Django test client starts it again (~60 ms each).
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("NEXUS_STATIC_ROOT") or BASE_DIR / "staticfiles")
# collectstatic also writes a gzip copy of each file (brotli too where the package is installed) and WhiteNoise
# serves it to clients that accept it: GraphiQL's 3.5 MB of JavaScript goes out as about 0.7 MB. File names do not
# change (no manifest), so nothing needs collectstatic to have run first.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
