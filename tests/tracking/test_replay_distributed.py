"""Replay spread over a real Celery worker (its own queue): chunks -> partial aggregates -> merge -> rules gives
exactly the single-process result."""

from __future__ import annotations

import pytest

from nexus_backend.tracking.detection.replay import replay_distributed, replay_file
from nexus_lab import traffic
from tests.polls.test_tasks_worker import worker_queue  # noqa: F401  (the real-worker fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_distributed_replay_equals_single_process(tmp_path, worker_queue):  # noqa: F811
    log, _ = traffic.write_traffic(
        traffic.generate(world="site", seed=5, hours=24, scale=0.5), tmp_path / "t.log.gz", tmp_path / "l.csv"
    )
    single = replay_file(log)
    spread = replay_distributed(log, chunks=5, queue=worker_queue, timeout=120)
    assert spread.chunks == 5
    assert spread.stats.parsed == single.stats.parsed == single.stats.lines
    assert {k: v.to_json() for k, v in spread.aggregator.stats.items()} == {
        k: v.to_json() for k, v in single.aggregator.stats.items()
    }
    assert {ip: (f.rules, f.score) for ip, f in spread.flagged.items()} == {
        ip: (f.rules, f.score) for ip, f in single.flagged.items()
    }
    assert len(single.flagged) > 10
