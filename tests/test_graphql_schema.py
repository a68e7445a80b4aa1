"""The committed schema.graphql is the schema the code serves (like openapi.yaml for REST)."""

from __future__ import annotations

import difflib
from pathlib import Path

from django.core.management import call_command

from nexus_backend.polls.management.commands.graphql_schema import schema_sdl

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "schema.graphql"


def test_committed_graphql_schema_matches_the_code():
    assert COMMITTED.exists(), "schema.graphql is missing: run `make schema` and commit it"
    committed, generated = COMMITTED.read_text(encoding="utf-8"), schema_sdl()
    diff = "".join(
        list(difflib.unified_diff(committed.splitlines(True), generated.splitlines(True), "committed", "code"))[:60]
    )
    assert committed == generated, f"schema.graphql is out of date: run `make schema` and commit it.\n{diff}"


def test_the_command_writes_what_the_test_compares(tmp_path):
    out = tmp_path / "schema.graphql"
    call_command("graphql_schema", path=str(out))
    assert out.read_text(encoding="utf-8") == schema_sdl()
    assert "type Mutation" in schema_sdl() and "vote(pollId: ID!, optionId: ID!): Vote!" in schema_sdl()
