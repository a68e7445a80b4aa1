"""get_redis_cache_metrics() as the curriculum defines it, windows of deltas, per-namespace counters against an
independent count, snapshots (service and Celery task) and the staff-only endpoint."""

from __future__ import annotations

import logging
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from nexus_backend.caching import metrics, selectors, services, store, tasks
from nexus_backend.caching.models import CacheMetricsSnapshot

pytestmark = pytest.mark.django_db

METRICS = "/api/metrics/cache/"


def test_get_redis_cache_metrics_reads_info_and_logs(conn, caplog):
    with caplog.at_level(logging.INFO, logger="nexus_backend.caching.metrics"):
        result = metrics.get_redis_cache_metrics()
    info = conn.info("stats")
    assert set(result) == {"keyspace_hits", "keyspace_misses", "total_requests", "hit_ratio"}
    assert 0 <= result["keyspace_hits"] <= info["keyspace_hits"]  # INFO only grows (a few lookups since)
    assert result["total_requests"] == result["keyspace_hits"] + result["keyspace_misses"]
    assert result["hit_ratio"] == pytest.approx(result["keyspace_hits"] / result["total_requests"])
    assert "Redis cache metrics" in caplog.text


def test_get_redis_cache_metrics_is_zero_safe(monkeypatch):
    class NoLookups:
        def info(self, section=None):
            return {"keyspace_hits": 0, "keyspace_misses": 0}

    monkeypatch.setattr(metrics, "get_redis_connection", lambda alias="default", write=True: NoLookups())
    assert metrics.get_redis_cache_metrics() == {
        "keyspace_hits": 0,
        "keyspace_misses": 0,
        "total_requests": 0,
        "hit_ratio": 0,
    }


def test_hit_ratio_is_none_without_lookups():
    assert metrics.hit_ratio(0, 0) is None
    assert metrics.hit_ratio(3, 1) == 0.75


def test_namespace_ratio_matches_an_independent_count_within_one_percent(conn, make_entry, namespace):
    """The test keeps its own count: before each read it asks Redis itself (its own GETs of the versions and the
    value key) whether the value is there. The app's per-namespace counters must agree, where INFO cannot."""
    rng = random.Random(6)
    entries = [make_entry(f"k{i}") for i in range(25)]
    expected = {"hit": 0, "miss": 0}
    with metrics.measure() as window:
        for _ in range(600):
            entry = entries[min(int(rng.paretovariate(1.2)) - 1, len(entries) - 1)]
            if rng.random() < 0.1:  # a write to that key
                store.bump(conn, entry.version_keys[1:])
                continue
            versions = [(conn.get(k) or b"0").decode() for k in entry.version_keys]
            expected["hit" if conn.exists(entry.value_key(versions)) else "miss"] += 1
            store.read_through(entry, lambda: (b"body", None))
    counted = window.result["namespaces"][namespace.name]
    own_ratio = expected["hit"] / (expected["hit"] + expected["miss"])
    assert abs(counted["hit_ratio"] - own_ratio) <= 0.01
    assert (counted["hits"], counted["misses"]) == (expected["hit"], expected["miss"])  # in fact, exactly
    # INFO counts every lookup on the server, including the test's own and the version counters: not the same.
    assert window.result["redis"]["keyspace_hits"] + window.result["redis"]["keyspace_misses"] > 600


def test_window_handles_a_redis_restart():
    now = timezone.now()
    before = metrics.Sample(now, "run-a", 100, 50, {"poll_results:hit": 10, "poll_results:miss": 5})
    after = metrics.Sample(now + timedelta(seconds=60), "run-b", 7, 3, {"poll_results:hit": 2})
    window = metrics.window(before, after)
    assert window["redis"] == {"keyspace_hits": 7, "keyspace_misses": 3, "hit_ratio": 0.7, "restarted": True}
    assert window["namespaces"]["poll_results"]["hits"] == 2 and window["seconds"] == 60.0
    assert window["namespaces"]["poll_list"] == {
        "hits": 0,
        "misses": 0,
        "computes": 0,
        "coalesced": 0,
        "discarded": 0,
        "hit_ratio": None,
    }
    assert window["ratio_gap"] == pytest.approx(1.0 - 0.7)


def test_snapshots_store_windows_between_them(make_entry, namespace):
    first = services.cache_metrics_snapshot_create()
    assert first.window_seconds is None and first.window["started_at"] is None
    entry = make_entry()
    for _ in range(4):
        store.read_through(entry, lambda: (b"x", None))
    second = services.cache_metrics_snapshot_create()
    assert second.window_seconds > 0
    assert second.window["namespaces"][namespace.name]["hits"] == 3
    assert second.window["namespaces"][namespace.name]["misses"] == 1
    assert second.keyspace_hits >= first.keyspace_hits
    assert [s.pk for s in selectors.cache_metrics_history(limit=5)] == [second.pk, first.pk]


def test_prune_keeps_recent_snapshots():
    old = services.cache_metrics_snapshot_create()
    CacheMetricsSnapshot.objects.filter(pk=old.pk).update(taken_at=timezone.now() - timedelta(days=8))
    recent = services.cache_metrics_snapshot_create()
    assert services.cache_metrics_snapshots_prune() == 1
    assert list(CacheMetricsSnapshot.objects.values_list("pk", flat=True)) == [recent.pk]


def test_snapshot_task_runs_the_service():
    snapshot_id = tasks.snapshot_cache_metrics.apply().get()
    assert CacheMetricsSnapshot.objects.filter(pk=snapshot_id).exists()


def test_snapshot_is_skipped_when_redis_does_not_answer(private_redis, caplog):
    private_redis.stop(save=False)
    with caplog.at_level(logging.WARNING):
        assert services.cache_metrics_snapshot_create() is None
    assert "Redis unavailable" in caplog.text
    assert CacheMetricsSnapshot.objects.count() == 0


# --------------------------------------------------------------------------- the endpoint


def test_endpoint_is_staff_only(api_client, auth_client):
    assert api_client.get(METRICS).status_code == 401
    response = auth_client.get(METRICS)
    assert response.status_code == 403 and response.json()["code"]


def test_endpoint_returns_the_current_window_and_history(client_for, staff_user, make_entry, namespace):
    services.cache_metrics_snapshot_create()
    entry = make_entry()
    for _ in range(3):
        store.read_through(entry, lambda: (b"x", None))
    response = client_for(staff_user).get(METRICS, {"history": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["redis_available"] is True and body["error"] is None
    window = body["window"]
    assert window["namespaces"][namespace.name]["hits"] == 2
    assert window["namespaces"][namespace.name]["misses"] == 1
    assert set(window["redis"]) == {"keyspace_hits", "keyspace_misses", "hit_ratio", "restarted"}
    assert window["started_at"] is not None and window["seconds"] > 0
    assert set(body["since_boot"]) == {"keyspace_hits", "keyspace_misses", "total_requests", "hit_ratio"}
    assert body["process"]["available"] is True
    assert len(body["history"]) == 1 and body["history"][0]["window"]["started_at"] is None


def test_endpoint_validates_history(client_for, staff_user):
    response = client_for(staff_user).get(METRICS, {"history": 5000})
    assert response.status_code == 400 and "history" in response.json()


def test_endpoint_answers_with_history_when_redis_is_down(client_for, staff_user, private_redis):
    services.cache_metrics_snapshot_create()
    private_redis.stop(save=False)
    body = client_for(staff_user).get(METRICS).json()
    assert body["redis_available"] is False and body["window"] is None and body["since_boot"] is None
    assert len(body["history"]) == 1 and body["error"]
    assert store.availability.snapshot()["available"] is True  # reading metrics does not trip the breaker
