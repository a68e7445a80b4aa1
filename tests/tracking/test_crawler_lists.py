"""Crawler verification: the shipped published lists, the command that refreshes them, forward-confirmed DNS."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError, call_command

from nexus_backend.tracking.detection.aggregate import Aggregator
from nexus_backend.tracking.detection.detector import by_ip, fcrdns, judge
from nexus_backend.tracking.detection.parsers import Record
from nexus_backend.tracking.detection.rules import CRAWLERS_DIR, load_crawlers, load_rules

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"


def test_shipped_lists_are_dated_and_name_their_source():
    crawlers = load_crawlers()
    assert {"googlebot", "bingbot"} <= set(crawlers)
    for crawler in crawlers.values():
        assert crawler.source.startswith("https://") and crawler.retrieved and crawler.networks and crawler.rdns


@pytest.mark.parametrize(
    ("ip", "agent", "verified"),
    [
        ("66.249.66.1", GOOGLEBOT, True),  # the classic range, inside the published /27s
        ("192.178.5.10", GOOGLEBOT, True),  # a newer range a hand-typed 66.249.64.0/19 list misses
        ("2001:4860:4801:10::1", GOOGLEBOT, True),
        ("157.55.39.7", BINGBOT, True),
        ("66.249.66.1", BINGBOT, False),  # Google's network, Bing's name
        ("203.0.113.5", GOOGLEBOT, False),
    ],
)
def test_a_claim_is_verified_against_the_claimed_crawlers_list(ip, agent, verified):
    rules = load_rules()
    agg = Aggregator(rules)
    agg.add_records([Record(1_741_000_000.0 + i, ip, "GET", f"/p{i}/", 200, agent, "") for i in range(3)])
    tripped = by_ip(judge(agg, rules))
    assert (not tripped) is verified, tripped


def test_forward_confirmed_reverse_dns_uses_the_resolver():
    # the machine's own resolver: 127.0.0.1 is localhost, and localhost is 127.0.0.1
    assert fcrdns("127.0.0.1", ("localhost",))
    assert not fcrdns("127.0.0.1", ("googlebot.com",))
    assert not fcrdns("2001:db8::/64", ("googlebot.com",))  # a /64 has no PTR


class _Lists(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/googlebot.json":
            body = json.dumps({"creationTime": "2026-12-01T00:00:00", "prefixes": [
                {"ipv4Prefix": "66.249.64.0/27"}, {"ipv6Prefix": "2001:4860:4801:10::/64"}]}).encode()  # fmt: skip
            self.send_response(200)
        else:
            body = b"not json"
            self.send_response(200 if self.path == "/broken.json" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def list_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Lists)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _list_file(folder, source):
    doc = json.loads((CRAWLERS_DIR / "googlebot.json").read_text())
    doc["source"] = source
    (folder / "googlebot.json").write_text(json.dumps(doc))
    return folder / "googlebot.json"


def test_refresh_rewrites_a_list_from_its_source(tmp_path, list_server, capsys):
    path = _list_file(tmp_path, f"{list_server}/googlebot.json")
    call_command("refresh_crawler_networks", "--dir", str(tmp_path))
    doc = json.loads(path.read_text())
    assert doc["prefixes"] == [{"ipv4Prefix": "66.249.64.0/27"}, {"ipv6Prefix": "2001:4860:4801:10::/64"}]
    assert doc["creationTime"] == "2026-12-01T00:00:00" and doc["crawler"] == "googlebot"
    assert "googlebot.json: 2 prefixes" in capsys.readouterr().out
    assert load_crawlers(tmp_path)["googlebot"].networks[0].prefixlen == 27


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("http://127.0.0.1:9/googlebot.json", "cannot fetch http://127.0.0.1:9/googlebot.json"),  # offline
        ("{server}/missing.json", "cannot fetch"),
        ("{server}/broken.json", "did not answer JSON"),
    ],
)
def test_refresh_fails_with_one_line_and_keeps_the_list(tmp_path, list_server, where, message):
    path = _list_file(tmp_path, where.format(server=list_server))
    before = path.read_text()
    with pytest.raises(CommandError, match=message) as exc:
        call_command("refresh_crawler_networks", "--dir", str(tmp_path), "--timeout", "3")
    assert "\n" not in str(exc.value)
    assert path.read_text() == before
