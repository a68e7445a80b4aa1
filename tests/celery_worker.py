"""A real ``celery -A nexus_backend worker`` subprocess, for the tests that need one.

Used by the ``json_worker`` fixture (tests/core/conftest.py), the ``worker_queue`` fixture
(tests/polls/test_tasks_worker.py) and the fault tests (tests/faults/harness.py re-exports :class:`Worker`).
The class lives in the package (``nexus_lab/notebooks/workers.py``), where notebook 04 uses it too."""

from nexus_lab.notebooks.workers import ROOT, Worker, default_queue, new_queue

__all__ = ["ROOT", "Worker", "default_queue", "new_queue"]
