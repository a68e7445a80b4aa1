"""The Prometheus registry: the request metrics every web process counts, and the collector a scrape reads.

Two kinds of figures:

- **counted in the web processes** (by ``RequestContextMiddleware``): ``nexus_http_request_duration_seconds``
  (histogram, by view and method) and ``nexus_http_responses_total`` (by view, method and status). Under gunicorn
  every worker writes them to a shared folder (multiprocess mode, ``multiproc.py``), so any worker's answer
  covers all of them.
- **read at scrape time from where they already live** (:class:`SourcesCollector`), never counted twice: each
  source is a function yielding metric families. Core has one of its own, the Celery task outcomes (a Redis hash
  the workers increment, ``celery_signals.py``); the layers above add theirs where the endpoint is assembled
  (``nexus_backend/ops.py``: the cache's counters, the suspicious-IP findings). A source that does not answer is
  reported as ``nexus_metrics_source_up{source="..."} 0``; the scrape itself still succeeds.

The endpoint, ``GET /metrics``, and who may read it are in ``nexus_backend/ops.py``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping

from django.db import DatabaseError
from django.http import HttpRequest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from nexus_backend.infra.errors import REDIS_ERRORS

from .celery_signals import task_outcomes

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


#: A source of figures read at scrape time: yields metric families; may raise a Redis or database error.
Source = Callable[[], Iterator[Metric]]


def task_families() -> Iterator[Metric]:
    family = CounterMetricFamily(
        "nexus_celery_tasks", "Celery task outcomes (success, failure, retry) by task name.", labels=["task", "outcome"]
    )
    for (task, outcome), count in sorted(task_outcomes().items()):
        family.add_metric([task, outcome], count)
    yield family


class SourcesCollector:
    """The figures read at scrape time, by source name (in name order); each source may fail alone."""

    def __init__(self, sources: Mapping[str, Source]) -> None:
        self.sources = dict(sorted(sources.items()))

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("nexus_metrics_source_up", "1 when the source answered this scrape.", labels=["source"])
        for source, read in self.sources.items():
            try:
                families = list(read())
            except (*REDIS_ERRORS, DatabaseError) as exc:
                logger.warning("metrics source %s unavailable: %s: %s", source, type(exc).__name__, exc)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up


def registry(sources: Mapping[str, Source]) -> CollectorRegistry:
    """What one scrape collects: every process's request metrics, then the figures read now from ``sources``."""
    scrape = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS:
        MultiProcessCollector(scrape)
    else:
        scrape.register(_REQUESTS)
    scrape.register(SourcesCollector(sources))
    return scrape
