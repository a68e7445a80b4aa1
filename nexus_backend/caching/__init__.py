"""Caching for the poll API: versioned read-through entries, invalidation after commit, honest metrics.

Start with :mod:`.keys` (every key, namespace and TTL), then :mod:`.store` (the read path) and
:mod:`.invalidation` (the write path). :mod:`.metrics` holds ``get_redis_cache_metrics()``.
"""
