"""API abuse on our poll API, tested like the other rule families: hand-written combined log lines, each sample
annotated with the rules it must trip and whether its address must be flagged.

Attacks: one account replaying its vote (409 already voted), one address cycling through accounts to vote on one
poll (a vote farm), rotating addresses voting on one poll without ever loading the site (a vote campaign), scripted
sign-ups (blind or in bursts), over REST and GraphQL. Hard benign cases that must NOT be flagged: a viral poll
(voters from a campus NAT and from their own addresses, a few of them voting across the hour boundary), the mobile
app behind carrier NAT (one user agent, no Referer, no assets), the app's users voting on one poll from their own
addresses, a developer hammering their own API with its 409s.

Every sample is judged inside the same background: readers of the poll single-page app who load its page and
assets, read polls through the API and vote, so the detector learns that this site has assets.
"""

from __future__ import annotations

import pytest

from nexus_backend.tracking.detection.aggregate import Aggregator
from nexus_backend.tracking.detection.detector import by_ip, judge
from nexus_backend.tracking.detection.rules import load_rules

from .test_detect_families import records  # sample lines parsed as replay parses them

AGENTS = [
    f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/13{i}.0.0.0 Safari/537.36"
    for i in range(10)
] + [f"Mozilla/5.0 (X11; Linux x86_64; rv:12{i}.0) Gecko/20100101 Firefox/12{i}.0" for i in range(10)]
CHROME = AGENTS[0]
APP = "NexusPolls/3.4.1 (Android; okhttp/4.12.0)"
SITE = "https://polls.example.com"
DAY = "03/Mar/2025"
ASSETS = ["/static/assets/index-1a2b3c4d.js", "/static/assets/index-5e6f7a8b.css", "/favicon.ico"]


def line(ip, request, status=200, *, referrer="-", agent=CHROME, second=0, hour=10):
    """One combined log line at hh:mm:ss on ``DAY`` (10:00 unless ``hour`` says otherwise)."""
    stamp = f"{DAY}:{hour:02d}:{second // 60 % 60:02d}:{second % 60:02d} +0000"
    return f'{ip} - - [{stamp}] "{request}" {status} 512 "{referrer}" "{agent}"'


def voter(ip, agent, poll, start=0, *, vote_status=201, signup=False, hour=10):
    """A person voting in the app: the poll's page, its assets, the poll and its results, (sign-up,) login, vote."""
    page = f"{SITE}/polls/{poll}"
    out = [line(ip, f"GET /polls/{poll} HTTP/2.0", referrer="https://t.co/x", agent=agent, second=start, hour=hour)]
    out += [line(ip, f"GET {a} HTTP/2.0", referrer=page, agent=agent, second=start + 1, hour=hour) for a in ASSETS]
    out += [
        line(ip, f"GET /api/polls/{poll}/ HTTP/2.0", referrer=page, agent=agent, second=start + 2, hour=hour),
        line(ip, f"GET /api/polls/{poll}/results/ HTTP/2.0", referrer=page, agent=agent, second=start + 2, hour=hour),
    ]
    if signup:
        out.append(
            line(ip, "POST /api/auth/register/ HTTP/2.0", 201, referrer=page, agent=agent, second=start + 40, hour=hour)
        )
    out += [
        line(ip, "POST /api/auth/token/ HTTP/2.0", 200, referrer=page, agent=agent, second=start + 50, hour=hour),
        line(ip, f"POST /api/polls/{poll}/vote/ HTTP/2.0", vote_status, referrer=page, agent=agent,
             second=start + 60, hour=hour),
    ]  # fmt: skip
    return out


BACKGROUND = [x for i in range(12) for x in voter(f"198.18.0.{i + 1}", AGENTS[i], 3 + i % 4, i * 7)]


def verdicts(lines, rules=None):
    rules = rules or load_rules()
    agg = Aggregator(rules)
    agg.add_records(records(BACKGROUND + lines))
    return by_ip(judge(agg, rules))


def _replayed_votes(path="/api/polls/7/vote/"):
    """A script replaying one account's vote, with the poll's page as a plausible Referer."""
    ip, ref = "203.0.113.20", f"{SITE}/polls/7"
    out = [line(ip, "POST /api/auth/token/ HTTP/1.1", 200, referrer=ref, second=0)]
    out.append(line(ip, f"POST {path} HTTP/1.1", 201, referrer=ref, second=1))
    return out + [line(ip, f"POST {path} HTTP/1.1", 409, referrer=ref, second=2 + i) for i in range(6)]


def _vote_farm():
    ip, ref, out = "203.0.113.30", f"{SITE}/polls/7", []
    for i in range(8):  # one account after the other, each voting once on poll 7
        out.append(line(ip, "POST /api/auth/token/ HTTP/1.1", 200, referrer=ref, agent=AGENTS[i], second=i * 20))
        out.append(line(ip, "POST /api/polls/7/vote/ HTTP/1.1", 201, referrer=ref, agent=AGENTS[i], second=i * 20 + 2))
    return out


def _vote_campaign(path="/api/polls/9/vote/", first=40):
    out = []
    for i in range(8):  # rotating proxies, a bought account and a different browser string each
        ip = f"203.0.113.{first + i}"
        ref = f"{SITE}/polls/9" if i % 2 else "-"
        if i % 3 == 0:
            out.append(line(ip, "GET /api/polls/9/ HTTP/1.1", referrer=ref, agent=AGENTS[i + 5], second=i * 300))
        out.append(line(ip, "POST /api/auth/token/ HTTP/1.1", 200, referrer=ref, agent=AGENTS[i + 5], second=i * 300))
        out.append(line(ip, f"POST {path} HTTP/1.1", 201, referrer=ref, agent=AGENTS[i + 5], second=i * 300 + 3))
    return out


def _signup_burst():
    agent = "python-requests/2.31.0"
    return [line("203.0.113.60", "POST /api/auth/register/ HTTP/1.1", 201, agent=agent, second=i * 9) for i in range(4)]


def _blind_signup():
    ref = f"{SITE}/"
    return [line("203.0.113.61", "POST /api/auth/register/ HTTP/1.1", 201, referrer=ref, second=5)]


def _api_walk():
    """A library walking the API by id at a steady pace, the site's root as a Referer now and then."""
    agent = "python-httpx/0.27.0"
    return [
        line("203.0.113.70", f"GET /api/polls/{pid}/ HTTP/1.1", referrer=f"{SITE}/" if pid % 3 == 0 else "-",
             agent=agent, second=pid * 4)
        for pid in range(1, 41)
    ]  # fmt: skip


# (what, its log lines, the address judged, the rule it must trip)
ATTACKS = [
    ("one account replaying its vote (409s)", _replayed_votes(), "203.0.113.20", "vote_replay"),
    ("the same over GraphQL", _replayed_votes("/graphql/mutation/vote"), "203.0.113.20", "vote_replay"),
    ("one address, many accounts, one poll", _vote_farm(), "203.0.113.30", "vote_farm"),
    ("rotating addresses voting on one poll", _vote_campaign(), "203.0.113.43", "vote_campaign"),
    ("the same over GraphQL", _vote_campaign("/graphql/mutation/vote"), "203.0.113.47", "vote_campaign"),
    ("a burst of sign-ups by a script", _signup_burst(), "203.0.113.60", "blind_signup"),
    ("a browser that signs up without loading the site", _blind_signup(), "203.0.113.61", "blind_signup"),
    ("a scraper walking the API by id", _api_walk(), "203.0.113.70", "page_walk"),
]


@pytest.mark.parametrize(("what", "lines", "ip", "rule"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_api_abuse_is_flagged(what, lines, ip, rule):
    found = verdicts(lines)
    assert ip in found, f"{what}: tripped nothing"
    assert rule in found[ip].rules, f"{what}: tripped {found[ip].rules}, not {rule}"
    assert found[ip].flagged, f"{what}: not flagged ({found[ip].score}: {found[ip].reasons})"


def test_every_address_of_a_vote_campaign_is_flagged():
    found = verdicts(_vote_campaign())
    assert all(found[f"203.0.113.{40 + i}"].flagged for i in range(8))


@pytest.mark.parametrize("rule", ["vote_replay", "vote_farm", "vote_campaign", "blind_signup", "page_walk"])
def test_without_its_rule_the_attack_goes_unflagged(rule):
    """Each sample is caught by its new rule, not by an older one: disabled, the attack is missed."""
    rules = load_rules().with_params({f"{rule}.enabled": False})
    for what, lines, ip, needed in ATTACKS:
        if needed == rule:
            found = verdicts(lines, rules)
            assert ip not in found or not found[ip].flagged, f"{what}: flagged without {rule}: {found[ip].rules}"


# --------------------------------------------------------------------------------------- hard benign: not flagged


def _viral_poll_campus_nat():
    """A viral poll shared in a campus: 40 people behind one address, each loading the page and voting once on the
    same poll, a few signing up first, two double-clicking (one 409 each)."""
    out = []
    for i in range(40):
        out += voter(
            "203.0.114.10", AGENTS[i % 20], 7, i * 60, signup=i % 3 == 0, vote_status=409 if i in (5, 9) else 201
        )
    return out


def _viral_poll_voters():
    """The same poll, voters on their own addresses; three of them loaded the page at 09:59 and vote at 10:00, and
    three voted with the page cached from yesterday's visit (no page, no asset in the log)."""
    out = [x for i in range(30) for x in voter(f"203.0.114.{100 + i}", AGENTS[i % 20], 7, i * 100)]
    for i in range(3):
        ip = f"203.0.114.{140 + i}"
        out += [x for x in voter(ip, AGENTS[i], 7, 3590, hour=9) if "/vote/" not in x and "/token/" not in x]
        out += [line(ip, "POST /api/auth/token/ HTTP/2.0", 200, referrer=f"{SITE}/polls/7", agent=AGENTS[i], second=5),
                line(ip, "POST /api/polls/7/vote/ HTTP/2.0", 201, referrer=f"{SITE}/polls/7", agent=AGENTS[i],
                     second=9)]  # fmt: skip
    for i in range(3):
        ip = f"203.0.114.{150 + i}"
        ref = f"{SITE}/polls/7"  # the open page's XHR sends it as Referer
        out += [line(ip, "POST /api/auth/token/ HTTP/2.0", 200, referrer=ref, agent=AGENTS[i + 3], second=200 + i),
                line(ip, "POST /api/polls/7/vote/ HTTP/2.0", 201, referrer=ref, agent=AGENTS[i + 3],
                     second=210 + i)]  # fmt: skip
    return out


def _carrier_nat_app():
    """The mobile app behind carrier NAT: one user agent, no Referer, no assets, reads and votes on many polls."""
    ip, out = "203.0.114.20", []
    for i in range(300):
        out.append(line(ip, f"GET /api/polls/{i % 60 + 1}/ HTTP/2.0", agent=APP, second=i * 11))
        if i % 6 == 0:
            out.append(line(ip, f"POST /api/polls/{i % 60 + 1}/vote/ HTTP/2.0", 201, agent=APP, second=i * 11 + 4))
        if i % 25 == 0:
            out.append(line(ip, "POST /api/auth/token/refresh/ HTTP/2.0", 200, agent=APP, second=i * 11 + 1))
    return out


def _app_users_on_one_poll():
    """The app's push notification about poll 9: users on their own addresses open it and vote (no assets)."""
    out = []
    for i in range(12):
        ip = f"203.0.114.{160 + i}"
        out += [line(ip, "GET /api/polls/9/ HTTP/2.0", agent=APP, second=i * 30),
                line(ip, "POST /api/polls/9/vote/ HTTP/2.0", 201, agent=APP, second=i * 30 + 5)]  # fmt: skip
    return out


def _binge_reader():
    """Someone opening 40 polls one after the other in the app (assets cached from yesterday): each page and its
    poll are referred by the page before."""
    ip, out, ref = "203.0.114.40", [], "-"
    for pid in range(1, 41):
        out.append(line(ip, f"GET /polls/{pid} HTTP/2.0", referrer=ref, agent=AGENTS[3], second=pid * 30))
        ref = f"{SITE}/polls/{pid}"
        out.append(line(ip, f"GET /api/polls/{pid}/ HTTP/2.0", referrer=ref, agent=AGENTS[3], second=pid * 30 + 1))
    return out


def _developer():
    """A developer hammering their own API: reads, writes, errors and, testing the vote, many 409s."""
    ip, tools, out = "203.0.114.30", ["PostmanRuntime/7.39.0", "curl/8.5.0", CHROME], []
    for i in range(1200):
        agent, ref = tools[i % 3], "http://localhost:5173/" if i % 2 else "-"
        out.append(line(ip, f"GET /api/polls/{i % 4 + 1}/ HTTP/1.1", 200 if i % 20 else 404, agent=agent, referrer=ref,
                        second=i * 3))  # fmt: skip
        if i % 8 == 0:
            out.append(line(ip, "POST /api/polls/1/vote/ HTTP/1.1", 409 if i % 16 else 201, agent=agent, second=i * 3))
        if i % 100 == 0:
            out.append(line(ip, "POST /api/auth/register/ HTTP/1.1", 201, agent=agent, second=i * 3 + 1))
    return out


BENIGN = [
    ("a viral poll behind a campus NAT", _viral_poll_campus_nat, ["203.0.114.10"]),
    ("a viral poll's voters, some across the hour or with the page cached", _viral_poll_voters,
     [f"203.0.114.{n}" for n in [*range(100, 130), 140, 141, 142, 150, 151, 152]]),
    ("the mobile app behind carrier NAT", _carrier_nat_app, ["203.0.114.20"]),
    ("the app's users voting on one poll", _app_users_on_one_poll, [f"203.0.114.{160 + i}" for i in range(12)]),
    ("a developer hammering their own API", _developer, ["203.0.114.30"]),
    ("a reader opening 40 polls, assets cached", _binge_reader, ["203.0.114.40"]),
]  # fmt: skip


@pytest.mark.parametrize(("what", "make", "ips"), BENIGN, ids=[b[0] for b in BENIGN])
def test_hard_benign_poll_traffic_is_not_flagged(what, make, ips):
    found = verdicts(make())
    flagged = {ip: (found[ip].rules, found[ip].reasons) for ip in ips if ip in found and found[ip].flagged}
    assert not flagged, f"{what}: {flagged}"


def test_a_vote_campaign_on_a_viral_poll_is_outnumbered_and_not_flagged():
    """The price of never flagging a viral poll: blind voters that are a minority of a poll's voters are let be."""
    viral = [x for i in range(30) for x in voter(f"203.0.114.{100 + i}", AGENTS[i % 20], 9, i * 100)]
    found = verdicts(viral + _vote_campaign())
    assert not any("vote_campaign" in f.rules for f in found.values())
    assert not any(f.flagged for ip, f in found.items() if ip.startswith("203.0.114."))


def test_without_static_files_in_the_log_the_asset_based_rules_stand_down():
    """The hourly task's request log may not see static files (WhiteNoise answers them first): then nothing tells a
    browser that never loaded the page from an app, so page_walk, vote_campaign and the blind sign-up stand down,
    while the rules that need no assets (409 replays, a vote farm, a sign-up burst) still flag."""
    rules = load_rules()
    app_reader = [line("203.0.114.50", f"GET /api/polls/{pid}/ HTTP/2.0", agent=APP, second=pid * 20) for pid in
                  range(1, 41)]  # fmt: skip
    lines = [x for x in BACKGROUND if "/static/" not in x and "favicon" not in x]
    lines += app_reader + _vote_campaign() + _blind_signup() + _replayed_votes() + _vote_farm() + _signup_burst()
    agg = Aggregator(rules)
    agg.add_records(records(lines))
    found = by_ip(judge(agg, rules))
    tripped = {rule for f in found.values() for rule in f.rules}
    assert not tripped & {"page_walk", "vote_campaign"}
    assert "203.0.113.61" not in found or "blind_signup" not in found["203.0.113.61"].rules
    assert "203.0.114.50" not in found or not found["203.0.114.50"].flagged
    for ip, rule in [("203.0.113.20", "vote_replay"), ("203.0.113.30", "vote_farm"), ("203.0.113.60", "blind_signup")]:
        assert rule in found[ip].rules and found[ip].flagged, (ip, found[ip].rules)
