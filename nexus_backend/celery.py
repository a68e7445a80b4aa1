"""The one Celery app, configured from Django settings (``CELERY_*``)."""

import os

from celery import Celery

from nexus_backend.core import celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus_backend.settings")

app = Celery("nexus_backend")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
celery_signals.connect()  # request id into tasks and their logs, task outcomes for /metrics
