"""``GET /metrics``: Prometheus text format (prometheus_client), for an operator's Prometheus to scrape.

Two kinds of figures:

- **counted in the web processes** (by ``RequestContextMiddleware``): ``nexus_http_request_duration_seconds``
  (histogram, by view and method) and ``nexus_http_responses_total`` (by view, method and status). Under gunicorn
  every worker writes them to a shared folder (multiprocess mode, ``multiproc.py``), so any worker's answer
  covers all of them.
- **read at scrape time from where they already live** (:class:`NexusCollector`), never counted twice: the cache's
  per-namespace counters (the Redis stats hash that ``caching/store.py`` increments in the same round trip as the
  lookup), Redis INFO keyspace counters, Celery task outcomes (a Redis hash the workers increment,
  ``celery_signals.py``) and the suspicious-IP findings (``SuspiciousIP`` rows by rule). A source that does not
  answer is reported as ``nexus_metrics_source_up{source="..."} 0``; the scrape itself still succeeds.

Who may read it: clients from ``NEXUS_METRICS_ALLOWED_IPS`` (networks; default loopback in development, nobody
in production) or with ``Authorization: Bearer <NEXUS_METRICS_TOKEN>``. Anyone else gets a JSON 403.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from .exceptions import error_response

logger = logging.getLogger(__name__)

#: prometheus_client chose its mode when first imported, from the same variable (see multiproc.py).
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# This process's request metrics. In multiprocess mode their values live in the shared folder instead, and a
# scrape reads the folder (MultiProcessCollector), not this registry.
_REQUESTS = CollectorRegistry(auto_describe=False)
REQUEST_LATENCY = Histogram(
    "nexus_http_request_duration_seconds",
    "Time from the request entering Nexus's middleware to its response, by view.",
    ["view", "method"],
    registry=_REQUESTS,
)
RESPONSES = Counter(
    "nexus_http_responses",
    "Responses by view, method and status code.",
    ["view", "method", "status"],
    registry=_REQUESTS,
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"  # no URL pattern matched (a 404 before any view): one label, whatever the path


#: (view, method, status) -> (latency child, responses child): ``labels()`` validates and locks on every call.
_children: dict[tuple[str, str, int], tuple] = {}
_failed: list[OSError] = []  # logged once per process


def observe(request: HttpRequest, status: int, seconds: float) -> None:
    """Count one response. Labels stay few: view names (not paths), known methods, status codes."""
    match = request.resolver_match
    view = match.view_name if match is not None else UNMATCHED
    method = request.method if request.method in _METHODS else "OTHER"
    key = (view, method, status)
    try:
        children = _children.get(key)
        if children is None:
            children = (REQUEST_LATENCY.labels(view, method), RESPONSES.labels(view, method, str(status)))
            _children[key] = children
        children[0].observe(seconds)
        children[1].inc()
    except OSError as exc:  # multiprocess mode: the shared folder is gone or full; the request still succeeds
        if not _failed:
            _failed.append(exc)
            logger.error("request metrics not recorded: %s: %s", type(exc).__name__, exc)


# --------------------------------------------------------------------------- read at scrape time


def _cache_families() -> Iterator[Metric]:
    from nexus_backend.caching import metrics as cache_metrics

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


def _task_families() -> Iterator[Metric]:
    from .celery_signals import task_outcomes

    family = CounterMetricFamily(
        "nexus_celery_tasks", "Celery task outcomes (success, failure, retry) by task name.", labels=["task", "outcome"]
    )
    for (task, outcome), count in sorted(task_outcomes().items()):
        family.add_metric([task, outcome], count)
    yield family


def _suspicious_families() -> Iterator[Metric]:
    from nexus_backend.tracking.selectors import suspicious_ip_counts

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


class NexusCollector:
    """The figures read at scrape time; each source may fail alone."""

    def collect(self) -> Iterator[Metric]:
        from nexus_backend.caching.store import REDIS_ERRORS

        sources = {"cache": _cache_families, "celery_tasks": _task_families, "suspicious_ips": _suspicious_families}
        up = GaugeMetricFamily("nexus_metrics_source_up", "1 when the source answered this scrape.", labels=["source"])
        for source, read in sources.items():
            try:
                families = list(read())
            except (*REDIS_ERRORS, DatabaseError) as exc:
                logger.warning("metrics source %s unavailable: %s: %s", source, type(exc).__name__, exc)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up


# --------------------------------------------------------------------------- the endpoint


def client_allowed(request: HttpRequest) -> bool:
    """A configured bearer token, or a client address in ``NEXUS_METRICS_ALLOWED_IPS``."""
    token = settings.NEXUS_METRICS_TOKEN
    if token:
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    from nexus_backend.tracking.client_ip import client_ip

    ip = client_ip(request)  # the address request tracking resolved (NEXUS_TRUSTED_PROXIES), never a forged one
    if ip is None:
        return False
    address = ipaddress.ip_address(ip)
    return any(address in network for network in settings.NEXUS_METRICS_ALLOWED_IPS)


def registry() -> CollectorRegistry:
    """What one scrape collects: every process's request metrics, then the figures read now."""
    scrape = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS:
        MultiProcessCollector(scrape)
    else:
        scrape.register(_REQUESTS)
    scrape.register(NexusCollector())
    return scrape


def metrics_view(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return error_response("Method not allowed.", "method_not_allowed", 405)
    if not client_allowed(request):
        return error_response("Metrics are not available to this client.", "permission_denied", 403)
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
