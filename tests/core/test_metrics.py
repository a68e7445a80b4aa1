"""``/metrics``: who may read it, and that each figure moves by exactly what the test did — requests by view and
status, cache hits and misses by namespace, Celery task outcomes from a real worker, suspicious-IP findings — in
this process and across the workers of a real gunicorn (multiprocess mode). Parsed with prometheus_client's own
parser."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from nexus_backend.infra.embedded import state_dir
from nexus_backend.tracking.models import SuspiciousIP
from nexus_lab.benchmark import Gunicorn
from tests.service_urls import service_urls

ROOT = Path(__file__).resolve().parents[2]
BARE = "/bench/bare/"


def parse(text: str) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` of a scrape."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: Client | None = None, **extra) -> dict[tuple[str, tuple], float]:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# --------------------------------------------------------------------------- access


def test_loopback_may_read_it_in_development(db):
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics/").status_code == 200


def test_other_clients_get_a_json_403(db):
    response = Client(REMOTE_ADDR="203.0.113.9").get("/metrics", HTTP_X_REQUEST_ID="m-403")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Metrics are not available to this client.",
        "code": "permission_denied",
        "request_id": "m-403",
    }


def test_allowed_networks_and_the_bearer_token(db, settings):
    import ipaddress

    settings.NEXUS_METRICS_ALLOWED_IPS = [ipaddress.ip_network("10.0.0.0/8")]
    settings.NEXUS_METRICS_TOKEN = "s3cret-scrape-token"
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403  # loopback is no longer listed
    outsider = Client(REMOTE_ADDR="203.0.113.9")
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token").status_code == 200
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-scrape-token").status_code == 403
    assert outsider.get("/metrics").status_code == 403
    assert outsider.post("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token").status_code == 405


def test_the_client_address_is_the_one_tracking_resolved(db, settings):
    """Behind one trusted proxy the client is the proxy's X-Forwarded-For entry, not the proxy (loopback)."""
    settings.NEXUS_TRUSTED_PROXIES = 1
    behind_proxy = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert behind_proxy.get("/metrics").status_code == 403


def test_production_lets_nobody_in_without_configuration():
    env = dict(
        os.environ,
        NEXUS_ENV="production",
        SECRET_KEY="metrics-test-" + "k7Qz9pW2xR5vN8bT4yL1" * 3,
        ALLOWED_HOSTS="example.com",
        DEBUG="false",
        **service_urls(),
    )
    env.pop("NEXUS_METRICS_ALLOWED_IPS", None)
    env.pop("NEXUS_METRICS_TOKEN", None)
    code = "from django.conf import settings as s; print(s.NEXUS_METRICS_ALLOWED_IPS, repr(s.NEXUS_METRICS_TOKEN))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=dict(env, DJANGO_SETTINGS_MODULE="nexus_backend.settings"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[] ''"


def test_a_bad_network_is_a_one_line_error():
    out = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=dict(os.environ, NEXUS_METRICS_ALLOWED_IPS="10.0.0.0/8,not-a-network"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert out.stderr.strip().startswith("error: NEXUS_METRICS_ALLOWED_IPS must be addresses or networks")
    assert "Traceback" not in out.stderr


# --------------------------------------------------------------------------- requests


def test_requests_by_view_and_status(db):
    client = Client()
    before = scrape(client)
    for _ in range(3):
        assert client.get(BARE).status_code == 200
    assert client.get("/api/polls/999999999/").status_code == 404
    assert client.get("/no/such/page/").status_code == 404
    assert client.delete(BARE).status_code == 200  # the bare view answers any method
    after = scrape(client)

    responses = "nexus_http_responses_total"
    assert moved(before, after, responses, view="bare", method="GET", status="200") == 3
    assert moved(before, after, responses, view="bare", method="DELETE", status="200") == 1
    assert moved(before, after, responses, view="poll-detail", method="GET", status="404") == 1
    assert moved(before, after, responses, view="<unmatched>", method="GET", status="404") == 1
    assert moved(before, after, responses, view="metrics", method="GET", status="200") == 1  # the first scrape
    latency = "nexus_http_request_duration_seconds"
    assert moved(before, after, f"{latency}_count", view="bare", method="GET") == 3
    assert moved(before, after, f"{latency}_bucket", view="bare", method="GET", le="+Inf") == 3
    assert moved(before, after, f"{latency}_sum", view="bare", method="GET") > 0


def test_a_metrics_failure_never_fails_the_request(db, monkeypatch, caplog):
    """Multiprocess mode writes files: a full disk or a removed folder costs the figures, not the answer."""
    from nexus_backend.core import prometheus as metrics

    def no_space(*labels):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(metrics, "_children", {})
    monkeypatch.setattr(metrics, "_failed", [])
    monkeypatch.setattr(metrics.REQUEST_LATENCY, "labels", no_space)
    assert Client().get(BARE).status_code == 200
    assert Client().get(BARE).status_code == 200
    errors = [r.getMessage() for r in caplog.records if r.name == "nexus_backend.core.prometheus"]
    assert errors == ["request metrics not recorded: OSError: [Errno 28] No space left on device"]  # once


def test_an_unknown_method_is_one_label(db):
    client = Client()
    before = scrape(client)
    assert client.generic("BREW", BARE).status_code == 200
    after = scrape(client)
    assert moved(before, after, "nexus_http_responses_total", view="bare", method="OTHER", status="200") == 1


# --------------------------------------------------------------------------- cache, tasks, suspicious IPs


@pytest.mark.django_db(transaction=True)  # cache invalidation happens on commit
def test_cache_hits_and_misses_by_namespace(make_poll):
    poll = make_poll()
    client = Client()
    before = scrape(client)
    assert client.get(f"/api/polls/{poll.pk}/")["X-Cache"] == "miss"
    assert client.get(f"/api/polls/{poll.pk}/")["X-Cache"] == "hit"
    assert client.get(f"/api/polls/{poll.pk}/")["X-Cache"] == "hit"
    assert client.get(f"/api/polls/{poll.pk}/results/")["X-Cache"] == "miss"
    after = scrape(client)

    assert moved(before, after, "nexus_cache_misses_total", namespace="poll_detail") == 1
    assert moved(before, after, "nexus_cache_hits_total", namespace="poll_detail") == 2
    assert moved(before, after, "nexus_cache_computes_total", namespace="poll_detail") == 1
    assert moved(before, after, "nexus_cache_misses_total", namespace="poll_results") == 1
    assert moved(before, after, "nexus_cache_hits_total", namespace="poll_results") == 0
    assert moved(before, after, "nexus_cache_hits_total", namespace="poll_list") == 0
    assert value(after, "nexus_metrics_source_up", source="cache") == 1


@pytest.mark.services
@pytest.mark.timeout(180)
@pytest.mark.django_db(transaction=True)
def test_task_outcomes_from_a_real_worker(json_worker):
    from tests.core import celery_tasks

    before = scrape()
    assert celery_tasks.succeed.apply_async().get(timeout=60) == "ok"
    assert celery_tasks.succeed.apply_async().get(timeout=60) == "ok"
    with pytest.raises(celery_tasks.Boom):
        celery_tasks.fail.apply_async().get(timeout=60)
    assert celery_tasks.retry_once.apply_async().get(timeout=60) == 1
    after = scrape()

    tasks = "nexus_celery_tasks_total"
    assert moved(before, after, tasks, task="tests.core.celery_tasks.succeed", outcome="success") == 2
    assert moved(before, after, tasks, task="tests.core.celery_tasks.fail", outcome="failure") == 1
    assert moved(before, after, tasks, task="tests.core.celery_tasks.fail", outcome="success") == 0
    assert moved(before, after, tasks, task="tests.core.celery_tasks.retry_once", outcome="retry") == 1
    assert moved(before, after, tasks, task="tests.core.celery_tasks.retry_once", outcome="success") == 1
    assert value(after, "nexus_metrics_source_up", source="celery_tasks") == 1


def _suspicious(ip: str, rules: list[str]) -> SuspiciousIP:
    now = timezone.now()
    return SuspiciousIP.objects.create(
        ip_address=ip,
        reason="; ".join(rules),
        rules=rules,
        score=0.9,
        first_seen=now,
        last_seen=now,
        window_start=now,
        window_end=now,
    )


def test_suspicious_ip_findings_by_rule(db):
    assert value(scrape(), "nexus_suspicious_ips") == 0
    _suspicious("203.0.113.1", ["admin_probe"])
    _suspicious("203.0.113.2", ["admin_probe", "scanner_agent"])
    _suspicious("2001:db8::3", ["brute_force"])
    after = scrape()
    assert value(after, "nexus_suspicious_ips") == 3
    assert value(after, "nexus_suspicious_ips_by_rule", rule="admin_probe") == 2
    assert value(after, "nexus_suspicious_ips_by_rule", rule="scanner_agent") == 1
    assert value(after, "nexus_suspicious_ips_by_rule", rule="brute_force") == 1
    SuspiciousIP.objects.filter(ip_address="203.0.113.1").delete()
    again = scrape()
    assert value(again, "nexus_suspicious_ips") == 2
    assert value(again, "nexus_suspicious_ips_by_rule", rule="admin_probe") == 1
    assert value(again, "nexus_suspicious_ips_by_rule", rule="brute_force") == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_source_that_does_not_answer_is_reported_and_the_scrape_still_works(db, settings):
    """Redis unreachable: cache and task figures are missing and say so; the request and database figures stay."""
    broken = {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0"}
    settings.CACHES = {**settings.CACHES, "default": broken}  # restored (and the clients reset) after the test
    samples = scrape()
    assert value(samples, "nexus_metrics_source_up", source="cache") == 0
    assert value(samples, "nexus_metrics_source_up", source="celery_tasks") == 0
    assert value(samples, "nexus_metrics_source_up", source="suspicious_ips") == 1
    assert not any(name.startswith("nexus_cache_hits") for name, _ in samples)
    assert ("nexus_suspicious_ips", ()) in samples


# --------------------------------------------------------------------------- gunicorn: several workers, one answer


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"User-Agent": "nexus-test/metrics"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@pytest.mark.timeout(180)
@pytest.mark.django_db(transaction=True)
def test_every_gunicorn_worker_answers_for_all_of_them():
    """3 sync workers share one multiprocess folder (gunicorn.conf.py): whichever worker a scrape reaches, the
    count of the requests sent is exact (one process alone would see only its share); the folder goes when
    gunicorn stops."""
    env = dict(os.environ, NEXUS_DB_NAME=connection.settings_dict["NAME"], DEBUG="false", NEXUS_REQUEST_LOGGING="off")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    web = Gunicorn(root=ROOT, workers=3, env=env)
    web.start()
    try:
        web.wait_healthy()
        folder = state_dir() / "prometheus" / f"gunicorn-{web.proc.pid}"
        assert folder.is_dir(), f"gunicorn.conf.py should have made {folder}"

        def served() -> set[str]:
            return {p.stem.rsplit("_", 1)[-1] for p in folder.glob("counter_*.db")}

        # Concurrent clients, in batches until several workers have served (which worker accepts a connection is
        # the kernel's choice: on a busy machine one worker can drain a whole batch), within a deadline.
        sent, deadline = 0, time.monotonic() + 90
        while True:
            with ThreadPoolExecutor(6) as pool:
                statuses = list(pool.map(lambda _: _get(web.port, BARE)[0], range(60)))
            assert statuses == [200] * 60
            sent += 60
            if len(served()) >= 2:
                break
            assert time.monotonic() < deadline, f"requests should have reached several workers: {sorted(served())}"
        for _ in range(8):
            status, text = _get(web.port, "/metrics")
            assert status == 200
            samples = parse(text)
            assert value(samples, "nexus_http_responses_total", view="bare", method="GET", status="200") == sent
            assert value(samples, "nexus_http_request_duration_seconds_count", view="bare", method="GET") == sent
    finally:
        web.stop()
    assert not folder.exists(), "gunicorn's on_exit should remove its metrics folder"
