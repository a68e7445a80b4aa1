"""``manage.py doctor``: which mode is active, where each service is, and whether it answers."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from nexus_backend.celery import app as celery_app
from nexus_backend.infra import embedded
from nexus_backend.infra.health import check_all


class Command(BaseCommand):
    help = (
        "Print the active service mode (embedded, services or mixed), where the database, cache and broker "
        "are, and whether each answers. Exits 1 if any does not."
    )

    def handle(self, *args, **options):
        services = settings.SERVICES
        where = services.describe()
        self.stdout.write(f"mode: {services.mode}")
        if services.mode != "services":
            self.stdout.write(f"state folder: {embedded.state_dir()}")
        checks = {c.name: c for c in check_all(celery_app)}
        failed = []
        for name in ("database", "cache", "broker"):
            check = checks[name]
            mark = self.style.SUCCESS("ok  ") if check.ok else self.style.ERROR("FAIL")
            self.stdout.write(f"  {mark} {name:<8} {where[name]}  (from {services.sources[name]})")
            self.stdout.write(f"         {check.detail} [{check.ms} ms]")
            if not check.ok:
                failed.append(name)
        if failed:
            raise CommandError(
                f"{', '.join(failed)} not answering: start it, fix its URL in the environment, "
                "or unset DATABASE_URL/REDIS_URL/CELERY_BROKER_URL to use the embedded servers"
            )
