"""A Postman collection (format v2.1) made from the committed OpenAPI schema, for learners who use Postman.

Why a generator of our own: the maintained converter is Postman's ``openapi-to-postmanv2`` (Node, not a
dependency of this project); the PyPI packages found for it (django-api-contract, postman-sync,
openapi2httpie) are 0.1 releases. The mapping needed here is small and kept stable, so the committed
collection can be checked for drift like ``openapi.yaml`` (``tests/test_postman.py``).

The mapping:
- one folder per OpenAPI tag, one request per operation, named by its summary, in schema order;
- ``{{baseUrl}}`` (a collection variable, default ``http://127.0.0.1:8000``) in front of every path;
  ``{poll_id}`` becomes the Postman path variable ``:poll_id``; query parameters are listed, disabled;
- collection auth is a bearer token ``{{accessToken}}``; operations the schema marks as needing no credentials
  send none. "Obtain" and "refresh" store the tokens they return into ``accessToken`` / ``refreshToken``;
- JSON bodies are examples built from the request schema: writable properties with a value for their type
  (the ``FRIENDLY`` table gives readable ones for this API's field names);
- run top to bottom (Postman's collection runner, or newman), it tells one story that passes on a fresh server
  and on every later run: sign-up picks a new ``username``, the poll it creates is the one it reads, edits, votes
  in and deletes (``pollId`` / ``optionId`` captured from the answers, ``STORY`` gives the order), and every
  request checks the status it expects (``EXPECTED``: the first 2xx the schema documents, unless stated).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

SCHEMA_URL = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
BASE_URL = "http://127.0.0.1:8000"
COLLECTION = Path("postman") / "nexus.postman_collection.json"

# Example values by property name; anything else gets a value from its type and format.
FRIENDLY: dict[str, Any] = {
    "username": "{{username}}",
    "email": "{{username}}@example.com",
    "password": "correct-horse-battery-42",
    "question": "Tabs or spaces?",
    "description": "Settle it once and for all.",
    "options": ["Tabs", "Spaces"],
    "expires_at": "{{expiresAt}}",
    "option": "{{optionId}}",
    "refresh": "{{refreshToken}}",
    "token": "{{accessToken}}",
}
BY_FORMAT = {"date-time": "2030-01-01T00:00:00Z", "date": "2030-01-01", "email": "ada@example.com", "uri": BASE_URL}
BY_TYPE = {"string": "text", "integer": 1, "number": 1.0, "boolean": True}
STORE_TOKENS = [
    "// Keep the tokens this answer carries for the next requests (collection variables).",
    "if (pm.response.code === 200) {",
    "    const body = pm.response.json();",
    '    if (body.access) { pm.collectionVariables.set("accessToken", body.access); }',
    '    if (body.refresh) { pm.collectionVariables.set("refreshToken", body.refresh); }',
    "}",
]


# The order a collection run goes in: sign up, log in, use the poll it creates, delete it last. Operations not
# listed follow in schema order.
STORY = [
    "auth_register",
    "auth_token_obtain",
    "auth_token_refresh",
    "auth_token_verify",
    "auth_logout",  # blacklists the refresh token; the access token still works for the polls that follow
    "polls_list",
    "polls_create",
    "polls_retrieve",
    "polls_update",
    "polls_partial_update",
    "polls_vote",
    "polls_results",
    "polls_destroy",
    "metrics_cache",
]
# Statuses a run by a new, non-staff user expects where the first documented 2xx is not the answer.
EXPECTED: dict[str, list[int]] = {"metrics_cache": [200, 403]}  # staff only: 403 for the learner's own account
# Scripts by operation: "prerequest" runs before the request is sent, "test" after its answer.
NEW_USERNAME = [
    "// A new account on every run, so the collection passes again on the same server.",
    'pm.collectionVariables.set("username", "ada_" + Date.now().toString(36));',
]
EXPIRES_SOON = [
    "// A month from now: polls may not expire further ahead than the server allows (a year by default).",
    'pm.collectionVariables.set("expiresAt", new Date(Date.now() + 30 * 24 * 3600 * 1000).toISOString());',
]
STORE_POLL = [
    "// The poll this run created is the one the next requests read, edit, vote in and delete (an edit that",
    "// replaces the options gives them new ids).",
    "if (pm.response.code === 200 || pm.response.code === 201) {",
    "    const poll = pm.response.json();",
    '    pm.collectionVariables.set("pollId", poll.id);',
    '    pm.collectionVariables.set("optionId", poll.options[0].id);',
    "}",
]
SCRIPTS: dict[str, dict[str, list[str]]] = {
    "auth_register": {"prerequest": NEW_USERNAME},
    "polls_create": {"prerequest": EXPIRES_SOON, "test": STORE_POLL},
    "polls_update": {"prerequest": EXPIRES_SOON, "test": STORE_POLL},
    "polls_partial_update": {"prerequest": EXPIRES_SOON, "test": STORE_POLL},
}
# Collection variables are text; these stand unquoted in JSON bodies so that the API receives numbers.
NUMERIC_VARIABLES = ("optionId",)


def _status_check(codes: list[int]) -> list[str]:
    return [
        f'pm.test("answers {" or ".join(map(str, codes))}", function () {{',
        f"    pm.expect(pm.response.code).to.be.oneOf({json.dumps(codes)});",
        "});",
    ]


def _expected(operation: dict) -> list[int]:
    if operation.get("operationId") in EXPECTED:
        return EXPECTED[operation["operationId"]]
    documented = sorted(int(code) for code in operation.get("responses", {}) if str(code).startswith("2"))
    return documented[:1]


def _resolve(schema: dict, node: dict) -> dict:
    """Follow ``$ref`` (``#/components/...``) until a real schema object."""
    while "$ref" in node:
        target: Any = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def example(schema: dict, node: dict, name: str | None = None) -> Any:
    """An example value for a (request) schema object."""
    node = _resolve(schema, node)
    if name in FRIENDLY:
        return FRIENDLY[name]
    if "example" in node:
        return node["example"]
    if node.get("default") not in (None, ""):
        return node["default"]
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type", "object")
    if kind == "object":
        return {
            key: example(schema, value, key)
            for key, value in node.get("properties", {}).items()
            if not _resolve(schema, value).get("readOnly")
        }
    if kind == "array":
        return [example(schema, node.get("items", {}))] * max(1, node.get("minItems", 1))
    return BY_FORMAT.get(node.get("format", ""), BY_TYPE.get(kind, "text"))


def _query_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)  # true, not Python's True


def _needs_no_credentials(operation: dict) -> bool:
    security = operation.get("security")
    return not security or all(not requirement for requirement in security)


def _request(schema: dict, path: str, method: str, operation: dict) -> dict:
    segments = [re.sub(r"^\{(.+)\}$", r":\1", part) for part in path.strip("/").split("/")]
    parameters = operation.get("parameters", [])
    url: dict[str, Any] = {
        "raw": "{{baseUrl}}/" + "/".join(segments) + "/",
        "host": ["{{baseUrl}}"],
        "path": [*segments, ""],
    }
    path_variables = [
        {
            "key": p["name"],
            "value": "{{pollId}}" if p["name"] == "poll_id" else "1",
            "description": p.get("description", ""),
        }
        for p in parameters
        if p["in"] == "path"
    ]
    query = [
        {
            "key": p["name"],
            "value": _query_value(p.get("example", example(schema, p.get("schema", {})))),
            "description": p.get("description", ""),
            "disabled": True,
        }
        for p in parameters
        if p["in"] == "query"
    ]
    if path_variables:
        url["variable"] = path_variables
    if query:
        url["query"] = query
    request: dict[str, Any] = {"method": method.upper(), "header": [], "url": url}
    description = operation.get("description") or operation.get("summary", "")
    if description:
        request["description"] = description
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body:
        request["header"].append({"key": "Content-Type", "value": "application/json"})
        raw = json.dumps(example(schema, body["schema"]), indent=2, ensure_ascii=False)
        for name in NUMERIC_VARIABLES:
            raw = raw.replace(f'"{{{{{name}}}}}"', f"{{{{{name}}}}}")
        request["body"] = {"mode": "raw", "raw": raw, "options": {"raw": {"language": "json"}}}
    if _needs_no_credentials(operation):
        request["auth"] = {"type": "noauth"}
    item: dict[str, Any] = {"name": operation.get("summary") or operation["operationId"], "request": request}
    ok = _resolve(schema, operation.get("responses", {}).get("200", {}))
    ok_body = ok.get("content", {}).get("application/json", {}).get("schema", {})
    scripts = SCRIPTS.get(operation.get("operationId", ""), {})
    test = list(scripts.get("test", []))
    if {"access", "refresh"} <= set(_resolve(schema, ok_body).get("properties", {})):
        test += STORE_TOKENS
    test += _status_check(_expected(operation))
    item["event"] = [{"listen": "test", "script": {"type": "text/javascript", "exec": test}}]
    if "prerequest" in scripts:
        item["event"].insert(
            0, {"listen": "prerequest", "script": {"type": "text/javascript", "exec": scripts["prerequest"]}}
        )
    item["response"] = []
    return item


def _story_position(operation_id: str) -> int:
    return STORY.index(operation_id) if operation_id in STORY else len(STORY)


def collection_from_schema(schema: dict, *, base_url: str = BASE_URL) -> dict:
    """The Postman collection (v2.1) for an OpenAPI 3 schema (a dict as loaded from ``openapi.yaml``)."""
    operations = [
        (path, method, operation)
        for path, by_method in schema["paths"].items()
        for method, operation in by_method.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    operations.sort(key=lambda op: _story_position(op[2].get("operationId", "")))  # stable: schema order otherwise
    folders: dict[str, list[dict]] = {}
    for path, method, operation in operations:
        tag = (operation.get("tags") or ["other"])[0]
        folders.setdefault(tag, []).append(_request(schema, path, method, operation))
    info = schema["info"]
    return {
        "info": {
            "name": info["title"],
            "description": (
                f"{info.get('description', '')}\n\nGenerated from openapi.yaml (version {info.get('version', '')}) "
                "by `python manage.py postman`. Set `baseUrl` and run the whole collection in order (Postman's "
                "runner or `newman run`): it signs up a new user, logs in (the tokens go to `accessToken` / "
                "`refreshToken`), creates a poll (its id goes to `pollId`, its first option to `optionId`), reads, "
                "edits, votes in and deletes that poll, and checks every answer's status."
            ).strip(),
            "schema": SCHEMA_URL,
        },
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{accessToken}}", "type": "string"}]},
        "variable": [
            {"key": "baseUrl", "value": base_url, "type": "string"},
            {"key": "accessToken", "value": "", "type": "string"},
            {"key": "refreshToken", "value": "", "type": "string"},
            {"key": "username", "value": "ada", "type": "string"},
            {"key": "pollId", "value": "1", "type": "string"},
            {"key": "optionId", "value": "1", "type": "string"},
            {"key": "expiresAt", "value": "", "type": "string"},
        ],
        "item": [{"name": tag, "item": items} for tag, items in folders.items()],
    }


def render(schema_path: Path) -> str:
    """The collection file's exact text for the schema at ``schema_path`` (stable: the drift test compares it)."""
    schema = yaml.safe_load(schema_path.read_text())
    return json.dumps(collection_from_schema(schema), indent=2, ensure_ascii=False) + "\n"
