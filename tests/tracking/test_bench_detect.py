"""``manage.py bench_detect`` at tiny sizes: it runs end to end, writes the JSON it promises, leaves no scratch rows.
No timing thresholds here (docs/benchmarks.md): the targets are checked by the command itself."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from nexus_backend.tracking.models import RequestLog
from nexus_lab.detection import bench

pytestmark = pytest.mark.django_db


def test_bench_detect_writes_its_json_and_cleans_up(tmp_path, capsys):
    RequestLog.objects.create(
        request_id="00000000-0000-4000-a000-000000000001",
        ip_address="203.0.113.9",
        timestamp=bench.SCRATCH_START,
        method="GET",
        path="/",
        status_code=200,
        duration_ms=3.0,
    )  # fmt: skip  (a real row inside the scratch period: it must survive)
    out = tmp_path / "out.json"
    call_command(
        "bench_detect", "--rows", "3000", "--window-rows", "500", "--lines", "2000", "--grid", "4",
        "--repeats", "2", "--results-dir", str(tmp_path / "results"), "--json", str(out),
    )  # fmt: skip
    data = json.loads(out.read_text())
    assert [p.name.startswith("bench-detect-") for p in (tmp_path / "results").iterdir()] == [True]
    assert {"params", "machine", "targets", "task", "replay", "met", "scratch_deleted"} <= set(data)
    task = data["task"]
    assert task["rows"] == 3000 and 0 < task["window_rows"] <= 3000
    assert len(task["runs_seconds"]) == 2 and task["median_seconds"] > 0
    assert task["flagged"] > 0 and "Scan" in task["plan"]
    assert task["statement_seconds"] > 0 and task["vs_statement"] > 0
    replay = data["replay"]
    assert replay["lines"] > 0 and replay["lines_per_second"] > 0 and len(replay["replay_runs_seconds"]) == 2
    assert replay["floor_lines_per_second"] > replay["lines_per_second"] * replay["vs_floor"] * 0.99
    assert replay["grid_points"] == 4 and replay["grid_total_seconds"] >= replay["replay_seconds"]
    assert set(data["met"]) == {"task_seconds", "lines_per_second", "grid_total_seconds"}
    assert data["scratch_deleted"] == 3000
    assert list(RequestLog.objects.values_list("duration_ms", flat=True)) == [3.0]
    assert "hourly task" in capsys.readouterr().out


def test_grid_points_are_distinct():
    points = bench.grid_points(50)
    assert len(points) == 50 and len({tuple(sorted(p.items())) for p in points}) == 50
    assert len(bench.grid_points(120)) == 120
