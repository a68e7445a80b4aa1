"""Nexus: the Online Poll System backend (Django) and the code its notebooks study."""

from .celery import app as celery_app

__all__ = ("celery_app",)
