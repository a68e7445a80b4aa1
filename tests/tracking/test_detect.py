"""The detector, rule by rule, on annotated sample requests (fail2ban style: each sample says which rules it must
trip and which it must not), and the rules file's checks."""

from __future__ import annotations

import pytest

from nexus_backend.tracking.detection.aggregate import Aggregator
from nexus_backend.tracking.detection.detector import by_ip, judge
from nexus_backend.tracking.detection.parsers import Record
from nexus_backend.tracking.detection.rules import RulesError, load_rules

T0 = 1_741_000_000.0  # inside one hourly window
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def reqs(ip, path, n=1, *, method="GET", status=200, agent=CHROME, referrer=""):
    return [Record(T0 + i, ip, method, path, status, agent, referrer) for i in range(n)]


# (what the sample is, its requests, rules it MUST trip, rules it must NOT trip)
SAMPLES = [
    (
        "admin probing: 4 refused hits on /admin",
        reqs("203.0.113.1", "/admin/", 4, status=302),
        {"sensitive_paths"},
        set(),
    ),
    (
        "a substring is not a segment: /api/test/1, /administrators-guide",
        reqs("203.0.113.2", "/api/test/1", 5, status=404) + reqs("203.0.113.2", "/administrators-guide", 5, status=404),
        set(),
        {"sensitive_paths", "cms_probe"},
    ),
    (
        "staff using the admin (200) is not probing",
        reqs("203.0.113.3", "/admin/polls/", 30),
        set(),
        {"sensitive_paths"},
    ),
    (
        "WordPress login on a Django site: near one strike",
        reqs("203.0.113.4", "/wp-login.php", 2, status=404),
        {"cms_probe"},
        set(),
    ),
    (
        "dotfiles",
        reqs("203.0.113.5", "/.env", 1, status=404) + reqs("203.0.113.5", "/.git/config", 1, status=404),
        {"cms_probe"},
        set(),
    ),
    ("a poll about .env files is a page, not a probe", reqs("203.0.113.6", "/api/polls/12/", 3), set(), {"cms_probe"}),
    (
        "many distinct 404s",
        [r for i in range(12) for r in reqs("203.0.113.7", f"/x{i}/", status=404)],
        {"not_found_probe"},
        set(),
    ),
    (
        "credential stuffing",
        reqs("203.0.113.8", "/api/auth/token/", 10, method="POST", status=401),
        {"auth_failures"},
        set(),
    ),
    (
        "typos among many logins (NAT) are not stuffing",
        reqs("203.0.113.9", "/api/auth/token/", 9, method="POST", status=401)
        + reqs("203.0.113.9", "/api/auth/token/", 40, method="POST", status=200),
        set(),
        {"auth_failures"},
    ),
    (
        "scanner user agent trips at once",
        reqs("203.0.113.10", "/", 1, agent="sqlmap/1.7.2#stable"),
        {"bad_user_agent"},
        set(),
    ),
    (
        "googlebot from Google's network is a crawler",
        [r for i in range(200) for r in reqs("66.249.66.1", f"/api/polls/{i}/", agent=GOOGLEBOT)],
        set(),
        {"fake_crawler", "scraper"},
    ),
    (
        "googlebot from elsewhere is fake",
        reqs("198.51.100.1", "/api/polls/", 3, agent=GOOGLEBOT),
        {"fake_crawler"},
        set(),
    ),
    (
        "a scraper walks every page",
        [r for i in range(200) for r in reqs("198.51.100.2", f"/api/polls/{i}/", agent="python-requests/2.31")],
        {"scraper"},
        set(),
    ),
    (
        "volume alone",
        reqs("198.51.100.3", "/api/polls/1/", 1500, referrer="http://localhost:5173/"),
        {"volume"},
        {"scraper"},
    ),
    (
        "private ranges are whitelisted",
        reqs("10.1.2.3", "/wp-login.php", 5, status=404, agent="sqlmap"),
        set(),
        {"cms_probe", "bad_user_agent"},
    ),
]


def _verdicts(records, rules=None):
    rules = rules or load_rules()
    agg = Aggregator(rules)
    agg.add_records(records)
    return by_ip(judge(agg, rules))


@pytest.mark.parametrize(("what", "records", "must", "must_not"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_annotated_samples(what, records, must, must_not):
    ip = records[0].ip
    tripped = set(_verdicts(records).get(ip).rules) if ip in _verdicts(records) else set()
    assert must <= tripped, f"{what}: must trip {must - tripped}"
    assert not (must_not & tripped), f"{what}: must not trip {must_not & tripped}"


def test_vote_stuffing_from_rotating_addresses_is_one_fingerprint():
    stuffers = [
        r for i in range(10) for r in reqs(f"198.51.100.{20 + i}", "/api/polls/7/vote/", method="POST", status=201)
    ]
    voters = [
        r
        for i in range(10)
        for r in reqs(f"198.51.100.{40 + i}", "/api/polls/7/", 3, referrer="https://polls.example.com/polls/7")
        + reqs(
            f"198.51.100.{40 + i}", "/api/polls/7/vote/", method="POST", referrer="https://polls.example.com/polls/7"
        )
    ]
    verdicts = _verdicts(stuffers + voters)
    assert {ip for ip, f in verdicts.items() if "fingerprint_burst" in f.rules} == {
        f"198.51.100.{20 + i}" for i in range(10)
    }
    # fewer addresses than min_ips: no burst, nothing flagged
    few = _verdicts(stuffers[:5])
    assert not any("fingerprint_burst" in f.rules or f.flagged for f in few.values())


def test_weak_signals_need_company_and_score_is_noisy_or():
    alone = _verdicts(reqs("198.51.100.3", "/api/polls/1/", 1500, agent="curl/8.5.0"))["198.51.100.3"]
    assert alone.rules == ["volume"] and alone.score == pytest.approx(0.25) and not alone.flagged
    weak = _verdicts(reqs("198.51.100.3", "/api/polls/1/", 1500, agent=""))["198.51.100.3"]
    assert set(weak.rules) == {"volume", "bad_user_agent"}
    assert weak.score == pytest.approx(1 - 0.75 * 0.8) and not weak.flagged  # two weak signals: 0.4 < 0.5
    medium = _verdicts(reqs("198.51.100.3", "/api/polls/1/", 1500, agent=GOOGLEBOT))["198.51.100.3"]
    assert set(medium.rules) == {"volume", "fake_crawler"}
    assert medium.score == pytest.approx(1 - 0.75 * 0.65) and medium.flagged  # weak + medium: 0.51 >= 0.5


def test_evidence_lists_counts_and_sample_paths():
    f = _verdicts(reqs("203.0.113.4", "/wp-login.php", 3, status=404))["203.0.113.4"]
    assert f.evidence["cms_probe"] == {"hits": 3, "families": ["wordpress"], "requests": ["GET /wp-login.php 404"]}
    assert f.evidence["requests"] == 3 and f.evidence["window"][0].endswith("+00:00")
    assert "wp-login" in f.reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [", "not valid YAML"),
        ("rules:\n  nope: {enabled: true}\n", "unknown rule 'nope'"),
        ("rules:\n  volume: {max_request: 5}\n", "has no parameter 'max_request'"),
        ("rules:\n  volume: {max_requests: lots}\n", "volume.max_requests must be a number"),
        ("rules:\n  spam_signature: {paths: ['(']}\n", "bad regular expression"),
        ("rules:\n  cms_probe: {families: {wordpress: ['wp-(']}}\n", "cms_probe.families.wordpress: bad regular"),
        ("site: {own_host: [a]}\n", "site has no parameter 'own_host'"),
        ("threshold: 2\n", "threshold must be in (0, 1]"),
        ("whitelist: [not-a-network]\n", "whitelist"),
        ("- a list\n", "a rules file is a mapping"),
        ("colour: red\n", "unknown key 'colour'"),
    ],
)
def test_broken_rules_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_rules(path)


def test_a_rules_file_only_says_what_it_changes_and_round_trips(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("threshold: 0.7\nrules:\n  volume: {max_requests: 50}\n")
    rules = load_rules(path)
    assert rules.threshold == 0.7 and rules.rule("volume")["max_requests"] == 50
    assert rules.rule("cms_probe")["min_hits"] == load_rules().rule("cms_probe")["min_hits"]
    again = load_rules(rules.dump(tmp_path / "dumped.yaml", comment="tuned"))
    assert again.data == rules.data
    with pytest.raises(RulesError, match="no such rules file"):
        load_rules(tmp_path / "missing.yaml")
