"""``manage.py graphql_schema``: write the GraphQL schema (SDL) the code serves to ``schema.graphql``.

The committed file is the GraphQL contract for frontend learners, as ``openapi.yaml`` is for REST; a test fails
when the code and the file drift apart (``make schema`` rewrites both).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from strawberry.printer import print_schema

from nexus_backend.graphql_api import schema

DEFAULT_PATH = Path(settings.BASE_DIR) / "schema.graphql"


def schema_sdl() -> str:
    """The schema as the printer writes it, ending with one newline."""
    return print_schema(schema).rstrip("\n") + "\n"


class Command(BaseCommand):
    help = "Write the GraphQL schema (SDL) served at /graphql/ to schema.graphql (or --path)."

    def add_arguments(self, parser):
        parser.add_argument("--path", default=str(DEFAULT_PATH), help="where to write it (default: %(default)s)")

    def handle(self, *args, path: str, **options):
        Path(path).write_text(schema_sdl(), encoding="utf-8")
        self.stdout.write(f"wrote {path}")
