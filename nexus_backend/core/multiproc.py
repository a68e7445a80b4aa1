"""The folder where gunicorn's workers keep their Prometheus request metrics (prometheus_client multiprocess mode).

Each gunicorn worker is a process with counters of its own, and a scrape of ``/metrics`` reaches one of them. In
multiprocess mode every worker writes its values to small mmap files in one folder and ``/metrics`` sums the
folder, so whichever worker answers, it answers for all of them (and for workers that have since been recycled).

``gunicorn.conf.py`` calls :func:`prepare` in the master, before any worker imports the app: prometheus_client
chooses its mode when it is first imported, from ``PROMETHEUS_MULTIPROC_DIR``. Each master gets a fresh folder
under ``<NEXUS_STATE_DIR>/prometheus/`` (two gunicorns never add up each other's requests), removed when it exits;
folders of masters that died without cleaning up are removed by the next one. Processes started otherwise
(``runserver``, tests, a notebook) keep their metrics in memory: they are one process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

from nexus_backend.infra.embedded import pid_alive, state_dir

ENV = "PROMETHEUS_MULTIPROC_DIR"
_PREFIX = "gunicorn-"


def _empty(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def prepare(master_pid: int) -> Path:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` for the workers of this gunicorn master and return the (empty) folder.

    A folder set in the environment is used as it is (emptied: prometheus_client needs a clean folder per run)."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError(f"prometheus_client was imported before {ENV} was set: its workers would not share metrics")
    configured = os.environ.get(ENV, "").strip()
    if configured:
        folder = Path(configured)
    else:
        parent = state_dir() / "prometheus"
        parent.mkdir(parents=True, exist_ok=True)
        for old in parent.glob(f"{_PREFIX}*"):
            with contextlib.suppress(ValueError):
                if not pid_alive(int(old.name.removeprefix(_PREFIX))):
                    shutil.rmtree(old, ignore_errors=True)
        folder = parent / f"{_PREFIX}{master_pid}"
    _empty(folder)
    os.environ[ENV] = str(folder)
    return folder


def worker_exited(folder: Path, pid: int) -> None:
    """A worker is gone: drop its live-gauge files (counters and histograms keep counting what it served)."""
    # Imported here, not at the top: gunicorn's master imports this module before it sets PROMETHEUS_MULTIPROC_DIR
    # (prepare() above), and prometheus_client picks its mode when first imported.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(folder))


def cleanup(folder: Path) -> None:
    """The master is exiting: its metrics go with it (the folder it made; a configured one is only emptied)."""
    if folder.name.startswith(_PREFIX):
        shutil.rmtree(folder, ignore_errors=True)
    else:
        _empty(folder)
