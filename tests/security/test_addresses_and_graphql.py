"""Client addresses that cannot be forged, and GraphQL held to REST's rules, against a real gunicorn.

Two servers: ``direct`` trusts no proxy (the default) and mounts the admin elsewhere (``NEXUS_ADMIN_PATH``);
``behind_lb`` trusts proxies by network (``NEXUS_TRUSTED_PROXY_NETWORKS=127.0.0.0/8``: this test process plays
the load balancer), so the addresses it writes in X-Forwarded-For are the clients'.
"""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from nexus_backend.tracking.detection.rules import load_rules
from nexus_backend.tracking.detection.services import detect_window

from .live import live_server, logged, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

WRONG = "not-the-password-at-all"
ADMIN = "backstage-7f3c"
VOTE = "mutation { vote(pollId: %s, optionId: %s) { id } }"


@pytest.fixture(scope="module")
def direct(django_db_setup, django_db_blocker):
    with live_server(NEXUS_TRUSTED_PROXIES="0", NEXUS_ADMIN_PATH=ADMIN) as server:
        yield server


@pytest.fixture(scope="module")
def behind_lb(django_db_setup, django_db_blocker):
    with live_server(NEXUS_TRUSTED_PROXY_NETWORKS="127.0.0.0/8") as server:
        yield server


# ------------------------------------------------------------------------------------------- client addresses


def test_a_forged_x_forwarded_for_from_an_untrusted_peer_changes_nothing_and_warns(direct):
    statuses = [direct.login("nobody", WRONG, client_ip=f"203.0.113.{i + 1}").status for i in range(6)]
    assert statuses == [401] * 5 + [429]  # all the peer's (127.0.0.1), whatever each request claimed
    assert {ip for ip, *_ in logged("/api/auth/token/", ips=["127.0.0.1"], expect=6)} == {"127.0.0.1"}
    # A loopback peer sending X-Forwarded-For with no trusted proxy configured: the service looks proxied.
    assert "no trusted proxy is configured" in direct.log


def test_proxies_in_the_trusted_networks_pass_on_the_clients_address(behind_lb):
    clients = [f"203.0.113.{i + 1}" for i in range(8)]
    # Each behind another trusted hop (127.0.0.9), and one forging an address at the left: all walked past.
    statuses = [behind_lb.login("nobody", WRONG, client_ip=f"198.51.100.1, {ip}, 127.0.0.9").status for ip in clients]
    assert statuses == [401] * 8  # eight clients, eight windows
    rows = logged("/api/auth/token/", ips=clients, expect=8)
    assert sorted(ip for ip, *_ in rows) == sorted(clients)
    assert "no trusted proxy is configured" not in behind_lb.log


def test_the_admin_login_limits_and_logging_follow_nexus_admin_path(direct, make_user):
    make_user("boss", is_staff=True)
    assert direct.call("GET", "/admin/login/").status == 404
    form = direct.call("GET", f"/{ADMIN}/login/")
    assert form.status == 200
    csrf = form.cookies["csrftoken"]
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', form.body).group(1).decode()
    statuses = [
        direct.call(
            "POST",
            f"/{ADMIN}/login/",
            body=f"csrfmiddlewaretoken={token}&username=boss&password={WRONG}",
            content_type="application/x-www-form-urlencoded",
            headers={"Cookie": f"csrftoken={csrf}"},
        ).status
        for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    rows = logged(f"/{ADMIN}/login/", ips=["127.0.0.1"], expect=7)
    assert [status for _ip, method, _path, status in rows if method == "POST"] == [401] * 5 + [429]


# ------------------------------------------------------------------------------------------- GraphQL


def test_graphql_operations_are_logged_with_the_status_rest_would_give(behind_lb, make_user, make_poll):
    """Finding: GraphQL was logged as `POST /graphql/` 200 even when refused."""
    poll = make_poll()
    first, second = poll.options.all()[:2]
    voter, hasty = make_user(), make_user()
    ip = "203.0.113.40"

    def errors(answer) -> list[str]:
        assert answer.status == 200  # GraphQL over HTTP: refusals travel in the body
        return [e["extensions"]["code"] for e in answer.json().get("errors", [])]

    assert errors(behind_lb.graphql(VOTE % (poll.pk, first.pk), token=token_for(voter), client_ip=ip)) == []
    assert errors(behind_lb.graphql(VOTE % (poll.pk, second.pk), token=token_for(voter), client_ip=ip)) == [
        "already_voted"
    ]
    assert errors(behind_lb.graphql(VOTE % (poll.pk, first.pk), client_ip=ip)) == ["not_authenticated"]
    assert errors(behind_lb.graphql(VOTE % (999999, first.pk), token=token_for(voter), client_ip=ip)) == ["not_found"]
    assert errors(behind_lb.graphql(VOTE % (poll.pk, '"04"'), token=token_for(voter), client_ip=ip)) == ["invalid"]
    assert errors(behind_lb.graphql("{ polls { id } }", client_ip=ip)) == []
    assert behind_lb.graphql("{ polls { id ", client_ip=ip).json()["errors"]
    # The vote limits hold per operation: 10 votes a minute per user (1 counted, 9 refused as duplicates, then 429).
    codes = [
        errors(behind_lb.graphql(VOTE % (poll.pk, first.pk), token=token_for(hasty), client_ip=ip)) for _ in range(11)
    ]
    assert codes == [[]] + [["already_voted"]] * 9 + [["throttled"]]

    rows = logged("/graphql/", ips=[ip], expect=18)
    assert [(path, status) for _ip, _method, path, status in rows] == [
        ("/graphql/mutation/vote", 201),
        ("/graphql/mutation/vote", 409),
        ("/graphql/mutation/vote", 401),
        ("/graphql/mutation/vote", 404),
        ("/graphql/mutation/vote", 400),
        ("/graphql/query/polls", 200),
        ("/graphql/", 400),
        ("/graphql/mutation/vote", 201),
        *[("/graphql/mutation/vote", 409)] * 9,
        ("/graphql/mutation/vote", 429),
    ]


def test_a_graphql_vote_burst_from_rotating_addresses_reaches_the_detector(behind_lb, make_user, make_poll, tmp_path):
    """Finding: a 10-address vote burst over GraphQL was not flagged; the same over REST was (10 of 10).

    The burst rule matches actions by path; given the GraphQL vote's path, as a rules file adds it, it sees the
    GraphQL burst exactly as it sees the REST one."""
    start = timezone.now()
    poll = make_poll()
    option = poll.options.first()
    burst = [f"203.0.113.{100 + i}" for i in range(10)]
    for ip in burst:
        answer = behind_lb.graphql(VOTE % (poll.pk, option.pk), token=token_for(make_user()), client_ip=ip)
        assert "errors" not in answer.json(), answer.json()
    rows = logged("/graphql/", ips=burst, expect=10)
    assert {(path, status) for _ip, _method, path, status in rows} == {("/graphql/mutation/vote", 201)}
    rules_file = tmp_path / "rules.yaml"
    actions = [*load_rules().data["rules"]["fingerprint_burst"]["actions"], "^/graphql/mutation/vote$"]
    rules_file.write_text("rules:\n  fingerprint_burst:\n    actions:\n" + "".join(f"      - '{a}'\n" for a in actions))
    result = detect_window(start=start, end=timezone.now(), rules=load_rules(rules_file), auto_block=False)
    assert set(burst) <= set(result.flagged_ips)


def test_ids_are_canonical(behind_lb, make_poll, make_user):
    """Finding: `/api/polls/0004/vote/` was another path than `/api/polls/4/vote/` for limits, cache and rules."""
    poll = make_poll()
    assert behind_lb.call("GET", f"/api/polls/{poll.pk}/").status == 200
    assert behind_lb.call("GET", f"/api/polls/{poll.pk:04d}/").status == 404
    vote = {"option": poll.options.first().pk}
    headers = {"Authorization": f"Bearer {token_for(make_user())}"}
    assert behind_lb.call("POST", f"/api/polls/0{poll.pk}/vote/", json_body=vote, headers=headers).status == 404
    answer = behind_lb.graphql(f'{{ poll(id: "0{poll.pk}") {{ id }} }}')
    assert answer.json()["errors"][0]["extensions"]["code"] == "not_found"
