"""Cache metrics over time: one row per snapshot (Celery beat, every minute)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class CacheMetricsSnapshot(models.Model):
    """Cumulative counters at ``taken_at`` and the window since the previous snapshot.

    ``keyspace_hits``/``keyspace_misses`` are Redis INFO's (server-wide, since ``redis_run_id`` started);
    ``counters`` is this app's stats hash (per namespace). ``window`` holds the deltas (see
    ``nexus_backend.caching.metrics.window``); its two headline ratios are columns too, for queries and charts."""

    taken_at = models.DateTimeField(default=timezone.now, db_index=True)
    redis_run_id = models.CharField(max_length=64, blank=True, default="")
    keyspace_hits = models.BigIntegerField()
    keyspace_misses = models.BigIntegerField()
    counters = models.JSONField(default=dict, blank=True)
    window_seconds = models.FloatField(null=True, blank=True, help_text="Since the previous snapshot.")
    hit_ratio = models.FloatField(null=True, blank=True, help_text="INFO-based (server-wide) over the window.")
    app_hit_ratio = models.FloatField(null=True, blank=True, help_text="This app's namespaces over the window.")
    window = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-taken_at", "-id"]
        get_latest_by = "taken_at"

    def __str__(self) -> str:
        return f"cache metrics at {self.taken_at:%Y-%m-%d %H:%M:%S}"
