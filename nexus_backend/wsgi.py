"""WSGI entry point: ``gunicorn nexus_backend.wsgi:application``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus_backend.settings")

application = get_wsgi_application()
