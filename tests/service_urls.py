"""The service URLs of the servers this test process uses, for NEXUS_ENV=production subprocesses: production never
starts the embedded servers, so it is handed the running ones (embedded or not) by URL."""

from __future__ import annotations

import os
from urllib.parse import quote

from django.conf import settings


def service_urls() -> dict[str, str]:
    """DATABASE_URL, REDIS_URL and CELERY_BROKER_URL: the ones set in this environment, else the embedded servers'
    (a PostgreSQL socket folder goes in the host part, percent-encoded, as dj-database-url reads it)."""
    services = settings.SERVICES
    db = services.database
    host = db["HOST"]
    where = quote(host, safe="") if host.startswith("/") else host + (f":{db['PORT']}" if db.get("PORT") else "")
    built = {
        "DATABASE_URL": f"postgres://{db['USER']}@{where}/{db['NAME']}",
        "REDIS_URL": services.redis_url,
        "CELERY_BROKER_URL": services.broker_url,
    }
    return {name: os.environ.get(name) or url for name, url in built.items()}
