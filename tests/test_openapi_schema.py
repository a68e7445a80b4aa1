"""The committed openapi.yaml is what the code generates, and generating it raises no warnings."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "openapi.yaml"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("schema") / "openapi.yaml"
    try:
        # Same command as `make schema`; --fail-on-warn turns any warning or error into a failure here.
        call_command("spectacular", file=str(out), validate=True, fail_on_warn=True)
    except CommandError as exc:
        pytest.fail(f"OpenAPI generation reports problems ({exc}); fix the annotations, then run `make schema`")
    return out.read_text()


def test_committed_schema_matches_the_code(generated):
    assert COMMITTED.exists(), "openapi.yaml is missing: run `make schema` and commit it"
    committed = COMMITTED.read_text()
    if committed != generated:
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    generated.splitlines(keepends=True),
                    "openapi.yaml (committed)",
                    "openapi.yaml (generated from the code)",
                )
            )[:60]
        )
        pytest.fail(f"openapi.yaml is out of date with the code: run `make schema` and commit it.\n{diff}")


def test_schema_documents_every_endpoint_and_its_errors(generated):
    schema = yaml.safe_load(generated)
    paths = schema["paths"]
    expected = {
        "/api/auth/register/",
        "/api/auth/token/",
        "/api/auth/token/refresh/",
        "/api/auth/token/verify/",
        "/api/auth/logout/",
        "/api/polls/",
        "/api/polls/{poll_id}/",
        "/api/polls/{poll_id}/vote/",
        "/api/polls/{poll_id}/results/",
    }
    assert expected <= set(paths)
    vote = paths["/api/polls/{poll_id}/vote/"]["post"]
    assert {"201", "400", "401", "404", "409"} <= set(vote["responses"])
    conflict = schema["components"]["schemas"]["VoteConflictCodeEnum"]["enum"]
    assert set(conflict) == {"already_voted", "poll_closed"}
    assert "jwtAuth" in schema["components"]["securitySchemes"]


@pytest.mark.parametrize(("url", "marker"), [("/api/docs/", b"swagger-ui"), ("/api/redoc/", b"redoc")])
def test_docs_pages_are_served_without_a_cdn(client, url, marker):
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.lower()
    assert marker in page
    assert b"cdn.jsdelivr" not in page and b"unpkg.com" not in page  # assets come from drf-spectacular-sidecar


def test_schema_endpoint_serves_the_schema(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Nexus Online Poll System API"
