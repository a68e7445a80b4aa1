"""Logs: JSON lines (production default) or plain text, each record with the request id (nexus_backend/core/logs.py)."""

from __future__ import annotations

from nexus_backend.core.logs import FORMATS as LOG_FORMATS
from nexus_backend.core.logs import logging_config

from .env import PRODUCTION, env_choice

NEXUS_LOG_FORMAT = env_choice("NEXUS_LOG_FORMAT", "json" if PRODUCTION else "plain", tuple(LOG_FORMATS))
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOGGING = logging_config(
    log_format=NEXUS_LOG_FORMAT,
    root_level=env_choice("LOG_LEVEL", "WARNING", LOG_LEVELS),
    app_level=env_choice("NEXUS_LOG_LEVEL", "INFO", LOG_LEVELS),
)
