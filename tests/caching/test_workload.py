"""The workload driver: seeded operations, Zipf popularity, per-request records, stale-read detection, and the
``run_workload`` command."""

from __future__ import annotations

import io
import json
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from nexus_backend.caching import config, invalidation, metrics
from nexus_lab.caching import workload
from nexus_lab.caching.workload import OperationSource, WorkloadConfig, WorkloadFixture

pytestmark = pytest.mark.django_db(transaction=True)


def fake_fixture(polls: int = 10, voters: int = 50) -> WorkloadFixture:
    return WorkloadFixture(
        poll_ids=list(range(100, 100 + polls)),
        options={p: [p * 10, p * 10 + 1] for p in range(100, 100 + polls)},
        voters=[(i, f"token-{i}") for i in range(voters)],
    )


@pytest.mark.django_db(transaction=False)
def test_operations_are_seeded_and_skewed():
    cfg = WorkloadConfig(requests=2000, seed=3, skew=1.5, write_fraction=0.2)
    first = [OperationSource(cfg, fake_fixture(voters=1000)).next() for _ in range(1)]
    a, b = OperationSource(cfg, fake_fixture(voters=1000)), OperationSource(cfg, fake_fixture(voters=1000))
    ops_a, ops_b = [a.next() for _ in range(2000)], [b.next() for _ in range(2000)]
    assert ops_a == ops_b and ops_a[0] == first[0]
    ranks = Counter(op.rank for op in ops_a if op.rank >= 0)
    assert ranks[0] > ranks[1] > ranks[5]
    kinds = Counter(op.kind for op in ops_a)
    assert 0.15 < kinds["vote"] / 2000 < 0.25 and a.exhausted == 0
    other = [OperationSource(WorkloadConfig(requests=10, seed=4), fake_fixture()).next() for _ in range(10)]
    assert other != ops_a[:10]


@pytest.mark.django_db(transaction=False)
def test_each_voter_votes_once_per_poll_and_votes_stop_when_voters_run_out():
    fixture = fake_fixture(polls=2, voters=5)
    source = OperationSource(WorkloadConfig(requests=100, seed=1, write_fraction=1.0), fixture)
    ops = [source.next() for _ in range(100)]
    votes = [(op.poll_id, op.voter) for op in ops if op.kind == "vote"]
    assert len(votes) == len(set(votes)) == 10  # 5 voters x 2 polls
    assert source.exhausted == 90 and all(op.kind == "results" for op in ops if op.kind != "vote")


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize(
    "kwargs",
    [{"requests": None}, {"requests": 0}, {"concurrency": 0}, {"write_fraction": 2}, {"read_mix": (("x", 1.0),)}],
)
def test_config_is_validated(kwargs):
    with pytest.raises(ValueError):
        WorkloadConfig(**kwargs)


def test_a_run_records_every_request_and_agrees_with_the_counters():
    fixture = workload.workload_setup(polls=4, voters=30, seed=2, prefix="wltest_")
    cfg = WorkloadConfig(requests=120, concurrency=3, seed=2, write_fraction=0.2)
    with metrics.measure() as window:
        result = workload.run_workload(cfg, fixture)
    summary = result.summary()
    assert summary["requests"] == 120 and summary["errors"] == {}
    assert summary["votes_accepted"] == summary["by_kind"]["vote"] and summary["stale_reads"] == 0
    reads = [r for r in result.records if r.kind != "vote"]
    assert all(r.cache in ("hit", "miss", "coalesced") for r in reads)
    assert window.result["application"]["hits"] == summary["hits"]
    assert window.result["application"]["misses"] == summary["misses"]
    frame = result.frame()
    assert len(frame) == 120 and {"latency_ms", "cache", "stale", "started"} <= set(frame.columns)
    assert workload.workload_reset(prefix="wltest_")["polls"] == 4


def test_without_invalidation_the_driver_catches_stale_reads():
    fixture = workload.workload_setup(polls=3, voters=60, seed=5, prefix="wltest_")
    cfg = WorkloadConfig(requests=150, concurrency=1, seed=5, write_fraction=0.3, read_mix=(("results", 1.0),))
    with config.configured(invalidation="ttl"):
        stale = workload.run_workload(cfg, fixture).summary()["stale_reads"]
    invalidation.everything()  # the stale entries the first run left behind
    with config.configured(invalidation="precise"):
        fresh = workload.run_workload(cfg, fixture).summary()["stale_reads"]
    assert stale > 0 and fresh == 0


def test_run_workload_command(tmp_path):
    out = io.StringIO()
    path = tmp_path / "run.json"
    call_command(
        "run_workload",
        "--requests",
        "40",
        "--polls",
        "3",
        "--voters",
        "10",
        "--concurrency",
        "2",
        "--prefix",
        "wltest_",
        "--no-progress",
        "--cleanup",
        "--json",
        str(path),
        stdout=out,
    )
    data = json.loads(path.read_text())
    assert len(data["records"]) == 40 and data["summary"]["requests"] == 40
    assert data["metrics_window"]["application"]["hits"] == data["summary"]["hits"]
    assert "hit ratio" in out.getvalue() and "poll_results" in out.getvalue()


def test_run_workload_refuses_in_process_options_with_a_url():
    with pytest.raises(CommandError, match="in-process"):
        call_command("run_workload", "--url", "http://127.0.0.1:1", "--no-cache", stdout=io.StringIO())
