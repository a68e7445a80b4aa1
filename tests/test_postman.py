"""The committed Postman collection is what the generator makes from the committed openapi.yaml, and it is
usable: every operation once, in folders by tag, with {{baseUrl}}, bearer {{accessToken}} and example bodies."""

from __future__ import annotations

import difflib
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from nexus_lab.postman import COLLECTION, render

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "openapi.yaml"
COMMITTED = ROOT / COLLECTION


@pytest.fixture(scope="module")
def collection() -> dict:
    return json.loads(render(SCHEMA))


def _requests(collection: dict):
    for folder in collection["item"]:
        for item in folder["item"]:
            yield folder["name"], item


def test_committed_collection_matches_the_schema():
    assert COMMITTED.exists(), f"{COLLECTION} is missing: run `make schema` and commit it"
    generated, committed = render(SCHEMA), COMMITTED.read_text()
    if committed != generated:
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    generated.splitlines(keepends=True),
                    f"{COLLECTION} (committed)",
                    f"{COLLECTION} (generated from openapi.yaml)",
                )
            )[:60]
        )
        pytest.fail(f"{COLLECTION} is out of date with openapi.yaml: run `make schema` and commit it.\n{diff}")


def test_every_operation_once_in_a_folder_named_by_its_tag(collection):
    schema = yaml.safe_load(SCHEMA.read_text())
    expected = sorted(
        (operation["tags"][0], method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    )
    found = sorted(
        (
            folder,
            item["request"]["method"],
            "/" + "/".join(part.replace(":poll_id", "{poll_id}") for part in item["request"]["url"]["path"]),
        )
        for folder, item in _requests(collection)
    )
    assert found == expected
    assert [folder["name"] for folder in collection["item"]] == ["auth", "polls", "metrics"]  # the story's order


def test_base_url_and_bearer_token_are_collection_variables(collection):
    variables = {variable["key"]: variable["value"] for variable in collection["variable"]}
    assert variables["baseUrl"] == "http://127.0.0.1:8000"
    assert "accessToken" in variables
    assert collection["auth"] == {
        "type": "bearer",
        "bearer": [{"key": "token", "value": "{{accessToken}}", "type": "string"}],
    }
    assert all(item["request"]["url"]["raw"].startswith("{{baseUrl}}/api/") for _, item in _requests(collection))
    assert collection["info"]["schema"].endswith("/collection/v2.1.0/collection.json")


def test_requests_carry_example_bodies_and_the_right_auth(collection):
    by_route = {(item["request"]["method"], item["request"]["url"]["raw"]): item for _, item in _requests(collection)}
    create = by_route[("POST", "{{baseUrl}}/api/polls/")]["request"]
    assert json.loads(create["body"]["raw"]) == {
        "question": "Tabs or spaces?",
        "description": "Settle it once and for all.",
        "options": ["Tabs", "Spaces"],
        "expires_at": "{{expiresAt}}",
    }
    assert "auth" not in create  # inherits the collection's bearer token
    vote = by_route[("POST", "{{baseUrl}}/api/polls/:poll_id/vote/")]["request"]
    assert json.loads(vote["body"]["raw"].replace("{{optionId}}", "7")) == {"option": 7}  # a number, not text
    assert [(v["key"], v["value"]) for v in vote["url"]["variable"]] == [("poll_id", "{{pollId}}")]
    login = by_route[("POST", "{{baseUrl}}/api/auth/token/")]
    assert login["request"]["auth"] == {"type": "noauth"}  # the schema says it needs no credentials
    assert 'pm.collectionVariables.set("accessToken", body.access)' in "\n".join(login["event"][0]["script"]["exec"])
    listing = by_route[("GET", "{{baseUrl}}/api/polls/")]["request"]
    assert {q["key"]: q["value"] for q in listing["url"]["query"]}["active"] == "true"
    assert all(q["disabled"] for q in listing["url"]["query"])


def test_the_command_writes_the_collection_and_refuses_a_missing_schema(tmp_path):
    out = tmp_path / "c.json"
    call_command("postman", schema=SCHEMA, out=out)
    assert out.read_text() == render(SCHEMA)
    with pytest.raises(CommandError, match="does not exist: run `make schema` first"):
        call_command("postman", schema=tmp_path / "missing.yaml", out=out)


def _story(collection: dict) -> list[tuple[str, str, dict]]:
    return [(item["request"]["method"], item["request"]["url"]["raw"], item) for _, item in _requests(collection)]


def _substitute(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: str(variables[m.group(1)]), text)


@pytest.mark.django_db
def test_run_in_order_the_collection_passes_with_the_poll_it_created(collection, make_poll):
    """What Postman's runner (or `newman run`) does, top to bottom, in-process: every request gets the status its
    test script expects. The scripts' effects are replayed here: the sign-up's new username, the tokens, and the
    ids of the poll the run created (another user's poll 1 must never be the one edited or deleted)."""
    someone_elses = make_poll(question="Not yours")
    variables = {v["key"]: v["value"] for v in collection["variable"]}
    client = Client()
    statuses = []
    for method, raw_url, item in _story(collection):
        events = {event["listen"]: "\n".join(event["script"]["exec"]) for event in item.get("event", [])}
        if "ada_" in events.get("prerequest", ""):
            variables["username"] = "ada_run1"
        if "expiresAt" in events.get("prerequest", ""):
            variables["expiresAt"] = (timezone.now() + timedelta(days=30)).isoformat()
        request = item["request"]
        for path_variable in request["url"].get("variable", []):  # Postman fills :name from the item's variables
            raw_url = raw_url.replace(f":{path_variable['key']}", path_variable["value"])
        url = _substitute(raw_url, variables).removeprefix(variables["baseUrl"])
        headers = {}
        if request.get("auth", {}).get("type") != "noauth" and variables["accessToken"]:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {variables['accessToken']}"
        body = _substitute(request["body"]["raw"], variables) if "body" in request else None
        response = client.generic(method, url, body or "", content_type="application/json", **headers)
        expected = json.loads(re.search(r"to\.be\.oneOf\((\[[^)]*\])\)", events["test"]).group(1))
        statuses.append((item["name"], response.status_code, expected))
        answer = response.json() if response.content and response["Content-Type"].startswith("application/json") else {}
        if "accessToken" in events["test"] and response.status_code == 200:
            variables["accessToken"] = answer.get("access", variables["accessToken"])
            variables["refreshToken"] = answer.get("refresh", variables["refreshToken"])
        if "pollId" in events["test"] and response.status_code in (200, 201):
            variables["pollId"], variables["optionId"] = answer["id"], answer["options"][0]["id"]
    failed = [(name, got, expected) for name, got, expected in statuses if got not in expected]
    assert not failed, failed
    assert len(statuses) == sum(1 for _ in _requests(collection))
    someone_elses.refresh_from_db()  # still there, unchanged
    assert someone_elses.question == "Not yours"
