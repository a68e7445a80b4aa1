"""The Redis cache and the poll list/detail/results cache in it (nexus_backend/caching: keys and TTLs in keys.py)."""

from __future__ import annotations

import os

from nexus_backend.caching.config import INVALIDATION_STRATEGIES

from .database import SERVICES
from .env import env_bool, env_choice

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

NEXUS_CACHE = {
    "ENABLED": env_bool("NEXUS_CACHE_ENABLED", True),  # false: every read from the database (benchmark baseline)
    "ALIAS": "default",
    "INVALIDATION": env_choice("NEXUS_CACHE_INVALIDATION", "precise", INVALIDATION_STRATEGIES),
    "TTL": {},  # per-namespace overrides in seconds, e.g. {"poll_results": 60}
    "RETRY_AFTER": 5.0,  # after a Redis error, seconds served from the database before trying Redis again
}
