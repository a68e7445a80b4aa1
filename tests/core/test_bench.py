"""``manage.py bench`` with tiny numbers: it starts gunicorn, measures, writes JSON and stops gunicorn; the
logging section compares logging off / on / sync and checks that N requests then a graceful stop leave N rows.

No timing thresholds here (docs/benchmarks.md): only that the figures exist and are positive.
"""

from __future__ import annotations

import io
import json
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from django.core.management import CommandError, call_command

from nexus_backend.polls.models import Poll
from nexus_backend.tracking.models import RequestLog
from nexus_lab import benchmark
from nexus_lab.benchmark import chunks, percentile, save_result
from nexus_lab.management.commands.bench import MIN_POLLS

pytestmark = pytest.mark.timeout(180)


def _gunicorn_pids(port: int) -> list[str]:
    out = subprocess.run(["pgrep", "-f", f"gunicorn.*127.0.0.1:{port}"], capture_output=True, text=True)
    return out.stdout.split()


def _run_bench(tmp_path, *args: str) -> tuple[dict, str]:
    out = io.StringIO()
    json_path = tmp_path / "out" / "bench.json"
    call_command(
        "bench",
        "--requests",
        "50",
        "--rounds",
        "1",
        "--concurrency",
        "2",
        "--no-progress",
        "--json",
        str(json_path),
        "--results-dir",
        str(tmp_path / "results"),
        *args,
        stdout=out,
        stderr=io.StringIO(),
    )
    data = json.loads(json_path.read_text())
    saved = list((tmp_path / "results").glob("bench-*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text()) == data
    return data, out.getvalue()


def _assert_positive_row(row: dict, path: str, requests: int) -> None:
    assert row["path"] == path
    assert "skipped" not in row, row.get("skipped")
    assert row["ok"] == requests and row["errors"] == {}
    for key in ("requests_per_s", "p50_ms", "p95_ms"):
        assert row[key] > 0, key
    assert row["p95_ms"] >= row["p50_ms"]
    assert len(row["rounds"]) == 1 and row["rounds"][0]["wall_s"] > 0


@pytest.mark.django_db(transaction=True)
def test_bench_bare_endpoint_writes_json_and_stops_gunicorn(tmp_path):
    data, table = _run_bench(tmp_path, "--sections", "endpoints", "--endpoints", "bare")

    assert data["schema"] == 2
    assert data["settings"]["requests_per_round"] == 50
    assert data["settings"]["rounds"] == 1
    assert data["settings"]["endpoints"] == {"bare": "/bench/bare/"}
    assert data["environment"]["cpu_count"] >= 1
    _assert_positive_row(data["endpoints"]["bare"], "/bench/bare/", 50)
    assert data["ratio_api_over_bare"] is None  # only one endpoint
    assert data["logging"] is None and data["reports"] is None

    assert "bare" in table and "req/s" in table and "gunicorn stopped" in table
    assert not RequestLog.objects.exists()  # its request logs were flushed, then deleted
    port = int(table.split("on 127.0.0.1:")[1].split()[0])
    assert _gunicorn_pids(port) == []


@pytest.mark.django_db(transaction=True)
def test_bench_api_against_bare_seeds_polls_and_reports_a_ratio(tmp_path):
    assert Poll.objects.count() == 0
    data, table = _run_bench(tmp_path, "--sections", "endpoints")

    assert Poll.objects.count() >= MIN_POLLS  # seeded through services.poll_create, seen by gunicorn
    _assert_positive_row(data["endpoints"]["bare"], "/bench/bare/", 50)
    _assert_positive_row(data["endpoints"]["api"], "/api/polls/", 50)
    ratio = data["ratio_api_over_bare"]
    assert ratio["throughput"] > 0 and ratio["p50_latency"] > 0
    assert "api / bare" in table


@pytest.mark.parametrize(
    "args",
    [
        ["--endpoints", "nope"],
        ["--requests", "0"],
        ["--concurrency", "100"],
        ["--rounds", "0"],
        ["--sections", "everything"],
        ["--logging-variants", "on,sync"],
        ["--logging-variants", "off,sync", "--zero-loss", "10"],
        ["--zero-loss", "-1"],
        ["--logging-path", "bench/bare/"],
    ],
)
def test_bench_rejects_bad_arguments(args):
    with pytest.raises(CommandError):
        call_command("bench", *args, stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_bench_logging_compares_off_on_sync_and_counts_rows_after_a_graceful_stop(tmp_path):
    data, table = _run_bench(tmp_path, "--sections", "logging", "--zero-loss", "400")

    logging = data["logging"]
    assert logging["path"] == "/bench/bare/"
    for variant in ("off", "on", "sync"):
        _assert_positive_row(logging["variants"][variant], "/bench/bare/", 50)
    assert set(logging["ratio_over_off"]) == {"on", "sync"}
    assert all(r["throughput"] > 0 for r in logging["ratio_over_off"].values())  # no threshold: docs/benchmarks.md
    zero = logging["zero_loss"]
    assert (zero["requests"], zero["answered_2xx"], zero["rows"]) == (400, 400, 400)
    assert zero["graceful_stop"] and zero["flusher_stopped_cleanly"] and zero["exact"]
    assert "logging on / off: throughput" in table and "RequestLog rows: 400  -> exact" in table
    assert not RequestLog.objects.exists()  # the benchmark's own request logs are deleted afterwards


def test_chunks_cover_every_request():
    for total, concurrency in [(1, 1), (50, 2), (400, 4), (1001, 8), (7, 64)]:
        sizes = chunks(total, concurrency)
        assert sum(sizes) == total and all(s > 0 for s in sizes)


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([3.0], 0.95) == 3.0
    assert percentile(list(reversed(values)), 0.95) == 95.0  # unsorted input: the same answer
    assert percentile([], 0.5) != percentile([], 0.5)  # NaN when empty


def test_save_result_writes_one_stamped_file_and_the_extra_path(tmp_path):
    """The one results writer: ``<name>-<UTC stamp>.json`` in the results folder (the stamp in UTC whatever the
    zone of ``started``), the same JSON at ``extra``."""
    started = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    paths = save_result(
        {"x": 1}, name="bench-x", started=started, results_dir=tmp_path / "r", extra=tmp_path / "o.json"
    )
    assert paths == [tmp_path / "r" / "bench-x-20260102T030405Z.json", tmp_path / "o.json"]
    assert [json.loads(p.read_text()) for p in paths] == [{"x": 1}, {"x": 1}]


def test_alternate_rounds_rotates_the_order_and_reverses_it_on_odd_rounds(monkeypatch):
    """Round r runs the targets rotated by r, reversed when r is odd; every target gets its rounds in order."""
    ran: list[str] = []

    def fake_round(pool, port, path, requests, concurrency, user_agent, progress):
        ran.append(path)
        return {"path": path}

    monkeypatch.setattr(benchmark, "run_round", fake_round)
    targets = {name: (1, name) for name in ("a", "b", "c", "d")}
    measured = benchmark.alternate_rounds(
        None, targets, rounds=5, requests=10, concurrency=2, user_agent="test", progress=False
    )
    assert ["".join(ran[i : i + 4]) for i in range(0, 20, 4)] == ["abcd", "adcb", "cdab", "cbad", "abcd"]
    assert list(measured) == ["a", "b", "c", "d"]
    assert all(rounds == [{"path": name}] * 5 for name, rounds in measured.items())


def test_paired_ratio_is_the_median_of_per_round_ratios_and_skips_empty_rounds():
    def measured(rps, p50):
        return {"requests_per_s": rps, "p50_ms": p50}

    rounds = [measured(200.0, 2.0), measured(300.0, 3.0), measured(None, None)]
    baseline = [measured(100.0, 4.0), measured(100.0, 1.0), measured(100.0, 1.0)]
    assert benchmark.paired_ratio(rounds, baseline) == {
        "throughput": 2.5,
        "p50_latency": 1.75,
        "per_round_throughput": [2.0, 3.0],
    }
    assert benchmark.paired_ratio([measured(0.0, None)], [measured(100.0, 1.0)]) is None
