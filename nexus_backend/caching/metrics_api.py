"""``GET /api/metrics/cache/`` (staff only): the cache metrics window now, since-boot INFO figures, history."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from nexus_backend.core import openapi as docs

from . import selectors


class RedisWindowSerializer(serializers.Serializer):
    keyspace_hits = serializers.IntegerField(help_text="INFO keyspace_hits over the window (the whole server).")
    keyspace_misses = serializers.IntegerField(help_text="INFO keyspace_misses over the window.")
    hit_ratio = serializers.FloatField(allow_null=True, help_text="hits / (hits + misses); null without lookups.")
    restarted = serializers.BooleanField(help_text="Redis restarted during the window (its counters restarted).")


class NamespaceWindowSerializer(serializers.Serializer):
    hits = serializers.IntegerField()
    misses = serializers.IntegerField()
    hit_ratio = serializers.FloatField(allow_null=True)
    computes = serializers.IntegerField(help_text="Recomputations stored (or discarded) after a miss.")
    coalesced = serializers.IntegerField(help_text="Misses answered by another request's recomputation.")
    discarded = serializers.IntegerField(help_text="Recomputations not stored: a write happened meanwhile.")


class ApplicationWindowSerializer(serializers.Serializer):
    hits = serializers.IntegerField()
    misses = serializers.IntegerField()
    hit_ratio = serializers.FloatField(allow_null=True)


class CacheWindowSerializer(serializers.Serializer):
    started_at = serializers.DateTimeField(allow_null=True, help_text="null: since the counters started.")
    ended_at = serializers.DateTimeField()
    seconds = serializers.FloatField(allow_null=True)
    redis = RedisWindowSerializer()
    namespaces = serializers.DictField(child=NamespaceWindowSerializer(), help_text="Per cache namespace.")
    application = ApplicationWindowSerializer(help_text="All namespaces together.")
    ratio_gap = serializers.FloatField(
        allow_null=True, help_text="application.hit_ratio - redis.hit_ratio: how far INFO is from the truth."
    )
    # A response field named like Serializer.errors (the API's name); this serializer only documents output.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.IntegerField(), help_text="Redis errors counted by the web processes (read, degraded ...)."
    )


class SinceBootSerializer(serializers.Serializer):
    """``get_redis_cache_metrics()``: server-wide INFO counters since Redis started."""

    keyspace_hits = serializers.IntegerField()
    keyspace_misses = serializers.IntegerField()
    total_requests = serializers.IntegerField()
    hit_ratio = serializers.FloatField()


class ProcessSerializer(serializers.Serializer):
    available = serializers.BooleanField(help_text="This web process currently talks to Redis.")
    errors = serializers.DictField(  # type: ignore[assignment]  # named like Serializer.errors (see above)
        child=serializers.IntegerField(), help_text="Since this process started."
    )
    pending_invalidations = serializers.IntegerField(help_text="Waiting to be replayed when Redis answers.")


class SnapshotSerializer(serializers.Serializer):
    taken_at = serializers.DateTimeField()
    window_seconds = serializers.FloatField(allow_null=True)
    hit_ratio = serializers.FloatField(allow_null=True, help_text="INFO-based, over the window.")
    app_hit_ratio = serializers.FloatField(allow_null=True, help_text="This app's namespaces, over the window.")
    keyspace_hits = serializers.IntegerField(help_text="Cumulative, since Redis started.")
    keyspace_misses = serializers.IntegerField()
    window = CacheWindowSerializer()


class CacheMetricsSerializer(serializers.Serializer):
    redis_available = serializers.BooleanField()
    error = serializers.CharField(allow_null=True)
    window = CacheWindowSerializer(allow_null=True, help_text="Since the latest snapshot; null if Redis is down.")
    since_boot = SinceBootSerializer(allow_null=True)
    process = ProcessSerializer()
    history = SnapshotSerializer(many=True, help_text="Latest snapshots (Celery beat, every minute), newest first.")


class CacheMetricsQuerySerializer(serializers.Serializer):
    history = serializers.IntegerField(
        required=False,
        default=selectors.HISTORY_DEFAULT,
        min_value=0,
        max_value=selectors.HISTORY_MAX,
        help_text=f"How many snapshots to return (0-{selectors.HISTORY_MAX}).",
    )


class CacheMetricsView(generics.GenericAPIView):
    permission_classes = [permissions.IsAdminUser]
    serializer_class = CacheMetricsSerializer
    pagination_class = None
    filter_backends = []

    @extend_schema(
        operation_id="metrics_cache",
        summary="Cache metrics (staff only)",
        description=(
            "The cache hit ratio two ways over the current window (since the latest snapshot): Redis INFO's "
            "server-wide keyspace counters, and this application's own per-namespace counters. Also the "
            "curriculum's since-boot `get_redis_cache_metrics()` figures and the recent snapshots."
        ),
        parameters=[CacheMetricsQuerySerializer],
        responses={
            200: CacheMetricsSerializer,
            400: docs.validation_error("CacheMetricsValidationError", ["history"]),
            401: docs.UNAUTHENTICATED,
            403: docs.error("Staff only."),
        },
        tags=["metrics"],
    )
    def get(self, request: Request) -> Response:
        params = CacheMetricsQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = selectors.cache_metrics_current(history=params.validated_data["history"])
        return Response(CacheMetricsSerializer(data).data)
