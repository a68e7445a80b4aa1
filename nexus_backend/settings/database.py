"""Where the database, cache and broker are: ``nexus_backend.infra.service_urls.resolve`` decides, once per process.

With DATABASE_URL / REDIS_URL unset (development only) it starts the embedded PostgreSQL and Redis; production
refuses to start without them before this module is imported (production.py).
"""

from __future__ import annotations

from nexus_backend.infra.service_urls import resolve

SERVICES = resolve()
NEXUS_SERVICE_MODE = SERVICES.mode

DATABASES = {"default": SERVICES.database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
