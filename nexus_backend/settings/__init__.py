"""Django settings for Nexus: every value comes from the environment (``.env.example`` lists the variables).

``DJANGO_SETTINGS_MODULE=nexus_backend.settings`` everywhere (manage.py, wsgi, asgi, celery, gunicorn, the
notebooks); ``NEXUS_ENV`` picks the environment:

- ``development`` (default): development.py. With DATABASE_URL and REDIS_URL unset the project uses its embedded
  PostgreSQL and Redis (``nexus_backend.infra``).
- ``production``: production.py, which refuses to start without its secrets and real service URLs.

The tests load test.py (pyproject.toml). The layout: env.py (the readers), base.py (Django's own settings and the
components: security, tracking, polls, graphql, logging, drf, database, caching, celery).
"""

from .env import ENVIRONMENT

if ENVIRONMENT == "production":
    from .production import *  # noqa: F403
else:
    from .development import *  # noqa: F403
