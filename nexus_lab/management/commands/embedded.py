"""``manage.py embedded start|stop|status``: the embedded PostgreSQL and Redis."""

from django.core.management.base import BaseCommand

from nexus_backend.infra import embedded


class Command(BaseCommand):
    help = (
        "Manage the embedded PostgreSQL and Redis whose state lives in .nexus/ (NEXUS_STATE_DIR). "
        "'start' is what every command does implicitly when DATABASE_URL/REDIS_URL are unset; "
        "'stop' shuts both down (data is kept); 'status' prints their pids."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop", "status"])

    def handle(self, *args, action, **options):
        if action == "start":
            # Settings already started whatever the environment leaves to the embedded servers.
            from django.conf import settings

            if settings.SERVICES.mode == "services":
                self.stdout.write("services mode: DATABASE_URL and REDIS_URL are set, nothing embedded to start")
            self._status()
        elif action == "stop":
            pg = embedded.stop_postgres()
            rd = embedded.stop_redis()
            self.stdout.write(
                f"postgres: {'stopped' if pg else 'was not running'}; redis: {'stopped' if rd else 'was not running'}"
            )
        else:
            self._status()

    def _status(self):
        pg = embedded.postgres_running()
        rd = embedded.redis_running()
        self.stdout.write(f"embedded postgres: {f'running (pid {pg})' if pg else 'not running'}")
        self.stdout.write(f"embedded redis:    {f'running (pid {rd.pid}, {rd.url})' if rd else 'not running'}")
        self.stdout.write(f"state folder:      {embedded.state_dir()}")
