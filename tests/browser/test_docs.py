"""Swagger UI, ReDoc and GraphiQL in headless Chromium, served by gunicorn as in production.

Each page must render what it is for (every API operation, the GraphiQL editor and a query's answer), log no
console error, get no HTTP error and send no request off the machine; a screenshot of each is saved in
artifacts/browser/. Skipped with a message when Chromium is absent.
"""

from __future__ import annotations

import gzip
import http.client
import json
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db, pytest.mark.timeout(180)]

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def operations(app_server) -> list[tuple[str, str, str]]:
    """(method, path, operationId) of every operation in the schema the pages render (the live /api/schema/)."""
    with urllib.request.urlopen(f"{app_server.loopback}/api/schema/?format=json", timeout=60) as response:
        schema = json.load(response)
    found = [
        (method, path, operation["operationId"])
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]
    assert len(found) >= 10, found  # auth, polls, votes, results and metrics
    return found


def test_swagger_ui_lists_every_operation(app_browser, app_server, operations):
    def ready(page) -> None:
        page.wait_for_function(
            "n => document.querySelectorAll('#swagger-ui .opblock').length === n", arg=len(operations)
        )

    with app_browser.visit(f"{app_server.url}/api/docs/", name="swagger-ui", ready=ready) as visit:
        title = visit.page.locator("#swagger-ui .info .title").inner_text()
        assert settings.SPECTACULAR_SETTINGS["TITLE"] in title
        shown = visit.page.locator("#swagger-ui .opblock").evaluate_all(
            """blocks => blocks.map(b => [b.querySelector('.opblock-summary-method').textContent.toLowerCase(),
                                          b.querySelector('.opblock-summary-path').dataset.path])"""
        )
        assert sorted(map(tuple, shown)) == sorted((method, path) for method, path, _ in operations)
        visit.assert_clean()


def test_redoc_renders_the_title_and_every_operation(app_browser, app_server, operations):
    title = settings.SPECTACULAR_SETTINGS["TITLE"]

    def ready(page) -> None:
        page.wait_for_function(
            "n => document.querySelectorAll(\"li[data-item-id*='/operation/']\").length === n", arg=len(operations)
        )
        page.get_by_role("heading", level=1, name=title).wait_for()

    with app_browser.visit(f"{app_server.url}/api/redoc/", name="redoc", ready=ready) as visit:
        menu = visit.page.locator("li[data-item-id*='/operation/']").evaluate_all(
            "items => items.map(li => li.getAttribute('data-item-id').split('/operation/')[1])"
        )
        assert sorted(menu) == sorted(operation_id for _, _, operation_id in operations)
        visit.assert_clean()


def test_graphiql_loads_from_the_app_and_runs_a_query(app_browser, app_server, transactional_db, make_poll):
    # Committed (transactional_db), so gunicorn sees it; the example query GraphiQL opens with lists polls.
    poll = make_poll(question="Which editor do GraphiQL users prefer?")

    def ready(page) -> None:
        page.locator(".graphiql-query-editor .CodeMirror").wait_for()
        page.locator(".graphiql-execute-button").click()
        page.locator(".graphiql-response").get_by_text(poll.question).wait_for()

    with app_browser.visit(f"{app_server.url}/graphql/", name="graphiql", ready=ready) as visit:
        answer = json.loads(visit.page.locator(".graphiql-response .CodeMirror-code").inner_text().replace("\xa0", " "))
        assert answer == {"data": {"polls": [{"id": str(poll.id), "question": poll.question}]}}
        scripts = [url for url in visit.requests if url.endswith(".js")]
        assert scripts and all(url.startswith(f"{app_server.url}/static/graphiql/") for url in scripts), scripts
        visit.assert_clean()


def test_static_files_go_out_compressed(app_server):
    """collectstatic wrote gzip copies (CompressedStaticFilesStorage) and WhiteNoise sends them to a client that
    accepts gzip: GraphiQL's bundle crosses the wire at under a third of its size, and unpacks to the same bytes."""
    import nexus_backend

    source = Path(nexus_backend.__file__).parent / "core" / "static" / "graphiql" / "graphiql.min.js"
    conn = http.client.HTTPConnection("127.0.0.1", app_server.port, timeout=60)
    try:
        conn.request("GET", "/static/graphiql/graphiql.min.js", headers={"Accept-Encoding": "gzip"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200
    assert response.getheader("Content-Encoding") == "gzip"
    assert len(body) < source.stat().st_size / 3
    assert gzip.decompress(body) == source.read_bytes()
