"""``manage.py serve``: web + Celery worker + beat in one terminal; Ctrl-C stops all three."""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the development web server, a Celery worker and Celery beat together. Ctrl-C stops them."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="address:port for the web server")
        parser.add_argument("--no-worker", action="store_true", help="do not start the worker and beat")

    def handle(self, *args, addr, no_worker, **options):
        python = sys.executable
        bindir = os.path.dirname(python)
        celery = os.path.join(bindir, "celery")
        commands = {"web": [python, "manage.py", "runserver", addr]}
        if not no_worker:
            commands["worker"] = [celery, "-A", "nexus_backend", "worker", "-l", "info", "--concurrency", "2"]
            commands["beat"] = [celery, "-A", "nexus_backend", "beat", "-l", "info"]
        procs = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}
        self.stdout.write(
            f"web on http://{addr}/ (API docs /api/docs/, GraphQL /graphql/, admin /admin/); "
            f"running: {', '.join(procs)}. Ctrl-C stops all."
        )
        try:
            while all(p.poll() is None for p in procs.values()):
                time.sleep(0.5)
            dead = [n for n, p in procs.items() if p.poll() is not None]
            self.stderr.write(f"{', '.join(dead)} exited; stopping the rest")
        except KeyboardInterrupt:
            pass
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs.values():
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
