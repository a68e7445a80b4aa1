"""gunicorn reads this file from its working directory by itself (the Dockerfile, docker-compose.yml and
``manage.py bench`` all start it from the project folder). It only sets up the shared Prometheus folder, so that
``/metrics`` counts the requests of every worker (nexus_backend/core/multiproc.py); command-line options still
choose binding, workers and timeouts."""

import os
from pathlib import Path

from nexus_backend.core import multiproc

_metrics_folder: Path = multiproc.prepare(os.getpid())


def child_exit(server, worker):
    multiproc.worker_exited(_metrics_folder, worker.pid)


def on_exit(server):
    multiproc.cleanup(_metrics_folder)
