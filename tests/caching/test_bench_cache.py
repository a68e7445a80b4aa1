"""``manage.py bench_cache`` with tiny numbers: two gunicorns, three targets, paired ratios, JSON, clean stop.
No timing thresholds (docs/benchmarks.md): only that the figures exist."""

from __future__ import annotations

import io
import json
import subprocess

import pytest
from django.core.management import call_command
from django.db import connection

from nexus_lab.caching import bench

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]


def test_bench_cache_measures_cached_uncached_and_bare(tmp_path):
    """Three gunicorns (cached, uncached, uncached with COUNT(*)), four targets, one round each."""
    out = io.StringIO()
    call_command(
        "bench_cache",
        "--votes",
        "3000",
        "--requests",
        "40",
        "--rounds",
        "1",
        "--concurrency",
        "2",
        "--workers",
        "1",
        "--workload",
        "60",
        "--no-progress",
        "--results-dir",
        str(tmp_path / "results"),
        "--json",
        str(tmp_path / "bench.json"),
        stdout=out,
    )
    data = json.loads((tmp_path / "bench.json").read_text())
    assert [p.name.startswith("bench-cache-") for p in (tmp_path / "results").iterdir()] == [True]
    assert data["data"]["total_votes"] == 3000 and data["data"]["poll_votes"] > 0
    for name in bench.TARGETS:
        row = data["endpoints"][name]
        assert row["ok"] == 40 and row["errors"] == {} and row["requests_per_s"] > 0
    assert all(value > 0 for value in data["ratios"].values())
    assert set(data["ratios"]) == set(bench.TARGET_RATIOS) | {"bare_over_uncached"}  # the ceiling has no target
    mixed = data["workload"]["servers"]
    assert mixed["cached"]["requests"] == mixed["uncached"]["requests"] == 60
    assert mixed["cached"]["errors"] == mixed["uncached"]["errors"] == {}
    assert mixed["cached"]["stale_reads"] == 0 and mixed["cached"]["hits"] > 0
    uncached_reads = 60 - mixed["uncached"]["by_kind"].get("vote", 0)
    assert mixed["uncached"]["cache"] == {"off": uncached_reads}
    table = out.getvalue()
    assert "cached / uncached" in table and "gunicorn stopped" in table
    assert f"bare / uncached          throughput x{data['ratios']['bare_over_uncached']:.2f}" in table
    running = subprocess.run(["pgrep", "-f", "nexus_backend.wsgi"], capture_output=True, text=True).stdout.split()
    assert not [pid for pid in running if _is_ours(pid, connection.settings_dict["NAME"])]


def _is_ours(pid: str, database: str) -> bool:
    """A gunicorn left behind by this test would have this test database in its environment."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read()
    except OSError:
        return False
    return b"NEXUS_CACHE_ENABLED=" in environ and f"NEXUS_DB_NAME={database}\0".encode() in environ
