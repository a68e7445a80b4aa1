"""``manage.py postman``: write the Postman collection generated from openapi.yaml (``make schema`` runs it)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from nexus_lab.postman import COLLECTION, render


class Command(BaseCommand):
    help = "Generate postman/nexus.postman_collection.json from openapi.yaml (Postman collection format v2.1)."

    def add_arguments(self, parser):
        root = Path(settings.NEXUS_PROJECT_ROOT)
        parser.add_argument("--schema", type=Path, default=root / "openapi.yaml", help="OpenAPI file to read.")
        parser.add_argument("--out", type=Path, default=root / COLLECTION, help="Collection file to write.")

    def handle(self, *args, schema: Path, out: Path, **options):
        if not schema.is_file():
            raise CommandError(f"{schema} does not exist: run `make schema` first")
        text = render(schema)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        self.stdout.write(f"wrote {out}")
