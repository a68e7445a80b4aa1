"""gunicorn reads this file from its working directory by itself (the Dockerfile, docker-compose.yml and
``manage.py bench`` all start it from the project folder). Command-line options override what is set here.

Workers (docs/security.md "Serving"): gthread, so that a client sending its headers slowly, or a request waiting on
a password hash, holds one thread rather than a whole process, and cheap reads keep being answered meanwhile
(PBKDF2 runs in C with the GIL released). Each worker takes at most ``threads`` requests at once and keeps idle
connections ``keepalive`` seconds; a worker silent for ``timeout`` seconds is restarted. In front of the internet,
put a buffering proxy before gunicorn all the same (deploy/nginx.conf): gunicorn itself has no time limit for
a request's headers, so ``workers * threads`` clients sending headers forever would still fill it.

It also sets up the shared Prometheus folder, so that ``/metrics`` counts the requests of every worker
(nexus_backend/core/multiproc.py)."""

import os
from pathlib import Path

from nexus_backend.core import multiproc

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
threads = 8
timeout = 30
graceful_timeout = 20
keepalive = 5
limit_request_line = 4094  # bytes in the request line (gunicorn's default, stated)
limit_request_fields = 50  # headers per request (gunicorn's default is 100)
limit_request_field_size = 8190

_metrics_folder: Path = multiproc.prepare(os.getpid())


def child_exit(server, worker):
    multiproc.worker_exited(_metrics_folder, worker.pid)


def on_exit(server):
    multiproc.cleanup(_metrics_folder)
