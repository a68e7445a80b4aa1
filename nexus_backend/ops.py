"""The operators' endpoints: ``GET /health/`` and ``GET /metrics`` (Prometheus text format, for an operator's
Prometheus to scrape).

They read every layer (the services' health from ``infra``, the request metrics from ``core``, the cache's
counters from ``caching``, the detector's findings from ``tracking``), so they are assembled here, beside
``urls.py``, above all the apps; each app keeps what it counts.

Who may read ``/metrics`` (and the details of ``/health/`` in production): clients from
``NEXUS_METRICS_ALLOWED_IPS`` (networks; default loopback in development, nobody in production) or with
``Authorization: Bearer <NEXUS_METRICS_TOKEN>``. Anyone else gets a JSON 403.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from nexus_backend.caching import metrics as cache_metrics
from nexus_backend.celery import app as celery_app
from nexus_backend.core import prometheus
from nexus_backend.core.exceptions import error_response
from nexus_backend.infra.health import check_all
from nexus_backend.tracking.client_ip import client_ip
from nexus_backend.tracking.selectors import suspicious_ip_counts


def client_allowed(request: HttpRequest) -> bool:
    """A configured bearer token, or a client address in ``NEXUS_METRICS_ALLOWED_IPS``."""
    token = settings.NEXUS_METRICS_TOKEN
    if token:
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    ip = client_ip(request)  # the address request tracking resolved (NEXUS_TRUSTED_PROXIES), never a forged one
    if ip is None:
        return False
    address = ipaddress.ip_address(ip)
    return any(address in network for network in settings.NEXUS_METRICS_ALLOWED_IPS)


def health(request):
    """``GET /health/``: 200 when the database, cache and broker all answer, else 503.

    In production the body says only ``status`` to the public: which service failed, and how (host names, ports,
    error text), is for the operators who may read ``/metrics`` (``NEXUS_METRICS_ALLOWED_IPS`` or the token)."""
    checks = check_all(celery_app)
    ok = all(c.ok for c in checks)
    body = {"status": "ok" if ok else "degraded"}
    if not settings.PRODUCTION or client_allowed(request):
        body["mode"] = settings.NEXUS_SERVICE_MODE
        body["checks"] = {c.name: {"ok": c.ok, "detail": c.detail, "ms": c.ms} for c in checks}
    return JsonResponse(body, status=200 if ok else 503)


# --------------------------------------------------------------------------- read at scrape time


def cache_families() -> Iterator[Metric]:
    """The cache's per-namespace counters (the Redis stats hash that ``caching/store.py`` increments in the same
    round trip as the lookup) and Redis INFO's keyspace counters."""
    totals = cache_metrics.window(None, cache_metrics.sample())  # before=None: everything counted so far
    names = {
        "hits": "Cache lookups answered from Redis, by namespace.",
        "misses": "Cache lookups that found nothing, by namespace.",
        "computes": "Values recomputed after a miss (stored or discarded), by namespace.",
        "coalesced": "Misses answered by another request's recomputation, by namespace.",
        "discarded": "Recomputations not stored because a write happened meanwhile, by namespace.",
    }
    for counter, help_text in names.items():
        family = CounterMetricFamily(f"nexus_cache_{counter}", help_text, labels=["namespace"])
        for namespace, counts in totals["namespaces"].items():
            family.add_metric([namespace], counts[counter])
        yield family
    errors = CounterMetricFamily("nexus_cache_errors", "Redis errors counted by the web processes.", labels=["kind"])
    for kind, count in totals["errors"].items():
        errors.add_metric([kind], count)
    yield errors
    redis = totals["redis"]
    yield CounterMetricFamily(
        "nexus_redis_keyspace_hits",
        "Redis INFO keyspace_hits: the whole server, since it started.",
        redis["keyspace_hits"],
    )
    yield CounterMetricFamily(
        "nexus_redis_keyspace_misses", "Redis INFO keyspace_misses: the whole server.", redis["keyspace_misses"]
    )


def suspicious_families() -> Iterator[Metric]:
    """The suspicious-IP findings: ``SuspiciousIP`` rows, in all and by rule."""
    total, by_rule = suspicious_ip_counts()
    yield GaugeMetricFamily("nexus_suspicious_ips", "Addresses flagged by the suspicious-IP detector.", total)
    family = GaugeMetricFamily(
        "nexus_suspicious_ips_by_rule",
        "Flagged addresses by rule they tripped (one address may count under several).",
        labels=["rule"],
    )
    for rule, count in sorted(by_rule.items()):
        family.add_metric([rule], count)
    yield family


SOURCES: dict[str, prometheus.Source] = {
    "cache": cache_families,
    "celery_tasks": prometheus.task_families,
    "suspicious_ips": suspicious_families,
}


def metrics_view(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return error_response("Method not allowed.", "method_not_allowed", 405)
    if not client_allowed(request):
        return error_response("Metrics are not available to this client.", "permission_denied", 403)
    return HttpResponse(generate_latest(prometheus.registry(SOURCES)), content_type=CONTENT_TYPE_LATEST)
