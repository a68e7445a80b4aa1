"""``manage.py bench_votes`` with tiny numbers: every figure exists and is positive (per thread count, with its
ratio to ``count``), the JSON is written, the counts agree with the votes afterwards, and the data is removed.
No timing thresholds: performance targets live in the benchmark, never in timed tests."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from nexus_backend.polls import counting
from nexus_backend.polls.models import Poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def test_bench_votes_measures_every_strategy_and_cleans_up(tmp_path):
    out = io.StringIO()
    json_path = tmp_path / "votes.json"
    call_command(
        "bench_votes",
        *("--scales", "1500,3k", "--repeats", "5", "--write-votes", "10", "--write-rounds", "2"),
        *("--concurrent-votes", "20", "--workers", "4,2", "--concurrent-rounds", "2", "--prefix", "tb_"),
        "--no-progress",
        *("--json", str(json_path), "--results-dir", str(tmp_path / "results")),
        stdout=out,
    )
    result = json.loads(json_path.read_text())
    assert [row["votes"] for row in result["scales"]] == [1500, 3000]
    for row in result["scales"]:
        assert set(row["strategies"]) == {"count", "counter", "summary", "delta"}
        assert row["counts_wrong_after_concurrent_votes"] == {"counter": 0, "summary": 0, "delta": 0}
        for data in row["strategies"].values():
            assert data["query"]["median_ms"] > 0 and data["query"]["p95_ms"] >= data["query"]["median_ms"]
            assert data["endpoint"]["median_ms"] > 0 and data["endpoint"]["n"] == 5
            assert data["query_after_concurrent_votes"]["median_ms"] > 0
            assert data["votes_per_s_sequential"] > 0 and data["votes_per_s_concurrent"] > 0
            assert set(data["concurrent_by_workers"]) == {"2", "4"}
            assert data["votes_per_s_concurrent"] == data["concurrent_by_workers"]["4"]["votes_per_s"]
            for threads in data["concurrent_by_workers"].values():
                assert threads["votes_per_s"] > 0 and len(threads["per_round_x_count"]) == 2
            assert data["concurrent_outcomes"] == {"created": 20 * 2 * 2}  # 2 thread counts x 2 rounds
        for threads in row["strategies"]["count"]["concurrent_by_workers"].values():
            assert threads["x_count"] == 1.0
        assert row["strategies"]["count"]["endpoint_speedup_vs_count"] == 1.0
    assert result["settings"]["workers"] == [2, 4] and result["settings"]["api_strategy"] == "delta"
    text = out.getvalue()
    assert "API x count" in text and "The API reads 'delta'" in text and "4thr v/s (x count)" in text
    assert "counts == COUNT(*) after the run" in text
    assert len(list((tmp_path / "results").glob("bench-votes-*.json"))) == 1
    assert not Poll.objects.filter(owner__username__startswith="tb_").exists()
    assert counting.counters_drift() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scales", "-10"], "votes must be from 0"),
        (["--strategies", "count,fastest"], "unknown counting strategy 'fastest'"),
        (["--workers", "0"], "--workers must be from 1 to 64 each, got '0'"),
        (["--workers", "8,65"], "--workers must be from 1 to 64 each"),
        (["--workers", "8,many"], "--workers must be comma-separated whole numbers"),
        (["--concurrent-rounds", "0"], "--concurrent-rounds must be at least 1"),
        (["--repeats", "0"], "--repeats must be at least 1"),
    ],
)
def test_bench_votes_refuses_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("bench_votes", *args, "--no-progress")
