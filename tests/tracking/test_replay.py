"""Replay: parsers (formats, gzip, bad input), the replay_log command, the hourly task (idempotent upsert,
auto-blocks) and the promise that replaying a file flags exactly what the task flags for the same requests."""

from __future__ import annotations

import csv
import gzip
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from nexus_backend.tracking.detection.parsers import LogError, Record, format_jsonl, open_log
from nexus_backend.tracking.detection.replay import replay_file, request_log_export_jsonl, request_log_load
from nexus_backend.tracking.detection.rules import load_rules
from nexus_backend.tracking.detection.services import detect_window
from nexus_backend.tracking.models import BlockedIP, SuspiciousIP
from nexus_lab import traffic
from nexus_lab.detection import evaluate

COMBINED = (
    '203.0.113.9 - - [03/Mar/2025:09:15:02 +0000] "GET /wp-login.php?x=1 HTTP/1.1" 404 153 "-" "Mozilla/5.0 zgrab/0.x"'
)
COMMON = '2001:db8::7 - frank [03/Mar/2025:10:15:02 +0100] "POST /api/auth/token/ HTTP/1.1" 401 -'
NGINX_GARBAGE = '198.51.100.4 - - [03/Mar/2025:09:15:03 +0000] "\\x16\\x03\\x01\\x00" 400 157 "-" "-"'
ESCAPED = '198.51.100.5 - - [03/Mar/2025:09:15:04 +0000] "GET / HTTP/1.1" 200 5 "-" "a \\"quoted\\" agent"'


def write(tmp_path, name, lines, *, gz=False):
    path = tmp_path / name
    data = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(data)
    else:
        path.write_text(data)
    return path


def test_combined_lines_parse_with_query_stripped_and_escapes(tmp_path):
    reader = open_log(write(tmp_path, "a.log", [COMBINED, NGINX_GARBAGE, ESCAPED]))
    records = list(reader)
    assert reader.format == "combined"
    assert records[0] == Record(
        datetime(2025, 3, 3, 9, 15, 2, tzinfo=UTC).timestamp(), "203.0.113.9", "GET", "/wp-login.php", 404,
        "Mozilla/5.0 zgrab/0.x", "",
    )  # fmt: skip
    assert records[1].method == "" and records[1].status == 400 and records[1].user_agent == ""  # a TLS handshake
    assert records[2].user_agent == 'a "quoted" agent'


def test_common_format_and_time_zones(tmp_path):
    reader = open_log(write(tmp_path, "c.log", [COMMON, COMMON]))
    (rec, _) = list(reader)
    assert reader.format == "common"
    assert rec.ts == datetime(2025, 3, 3, 9, 15, 2, tzinfo=UTC).timestamp() and rec.ip == "2001:db8::7"
    assert rec.user_agent == "" and rec.method == "POST"


@pytest.mark.parametrize(("fmt", "prefix"), [("vhost_combined", "blog.example.org:443 "), ("vhost_common", "blog ")])
def test_apache_vhost_formats_replay_as_their_plain_forms(tmp_path, sample, fmt, prefix):
    """Debian's other_vhosts_access.log writes the virtual host first (``%v:%p``, or ``%v`` in vhost_common): the
    same log with it replays to the same records and verdicts, in the plain and the parallel reader alike."""
    plain, _ = traffic.write_traffic(sample, tmp_path / "plain.log.gz", tmp_path / "labels.csv")
    lines = gzip.open(plain, "rt").read().splitlines()
    if fmt == "vhost_common":  # cut the referrer and agent: a common line
        lines = [re.match(r'(.*?" \d{3} (?:\d+|-)) "', line).group(1) for line in lines]
        plain = write(tmp_path, "plain-common.log", lines)
    vhost = write(tmp_path, "vhost.log", [prefix + line for line in lines])
    reader = open_log(vhost)
    assert reader.format == fmt
    assert list(reader) == list(open_log(plain)) and reader.stats.malformed == 0
    for processes in (1, 2):
        ours, theirs = replay_file(vhost, processes=processes), replay_file(plain, processes=processes)
        assert ours.flagged.keys() == theirs.flagged.keys() and ours.flagged
        assert [f.rules for f in ours.flagged.values()] == [f.rules for f in theirs.flagged.values()]


def test_times_within_a_parsed_minute_equal_a_full_parse(tmp_path):
    """The parser parses each minute of a log once and adds the seconds: every second, across minute, hour and day
    boundaries and time zones, must give what parsing the whole timestamp gives."""
    stamps = ["31/Dec/2024:23:59:58 +0000", "31/Dec/2024:23:59:59 +0000", "01/Jan/2025:00:00:00 +0000",
              "01/Jan/2025:00:00:59 +0000", "01/Jan/2025:00:00:07 +0530", "01/Jan/2025:00:00:08 -0930",
              "01/Jan/2025:00:00:09 +0530", "01/Jan/2025:00:00:60 +0000", "01/Jan/2025:00:00:0x +0000"]  # fmt: skip
    lines = [f'203.0.113.{i} - - [{ts}] "GET / HTTP/1.1" 200 5 "-" "ua"' for i, ts in enumerate(stamps)]
    reader = open_log(write(tmp_path, "t.log", lines))
    got = {rec.ip: rec.ts for rec in reader}
    for i, ts in enumerate(stamps[:-1]):
        date, _, zone = ts.partition(" ")
        day = datetime.strptime(date[:17], "%d/%b/%Y:%H:%M").replace(tzinfo=UTC)
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:])) * (1 if zone[0] == "+" else -1)
        assert got[f"203.0.113.{i}"] == (day - offset).timestamp() + int(date[18:]), ts
    assert "203.0.113.8" not in got and reader.stats.malformed == 1  # "0x" seconds: refused, as before


def test_jsonl_gzip_and_malformed_lines_are_counted_with_examples(tmp_path):
    good = format_jsonl(Record(1_741_000_000.0, "203.0.113.1", "GET", "/x/", 200, "ua", ""))
    lines = [good, "{not json", '{"ip_address": "nope", "timestamp": 1, "path": "/", "status_code": 200}', "", good]
    reader = open_log(write(tmp_path, "e.jsonl.gz", lines, gz=True))
    assert reader.format == "jsonl" and len(list(reader)) == 2
    assert (reader.stats.malformed, reader.stats.blank) == (2, 1)
    assert [e[0] for e in reader.stats.examples] == [2, 3] and "not JSON" in reader.stats.examples[0][1]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"\x00\x01\x02binary\x00" * 50, "binary"), (b"hello world\nnot a log\n", "unknown log format")],
)
def test_files_that_cannot_be_replayed(tmp_path, content, message):
    path = tmp_path / "bad.log"
    path.write_bytes(content)
    with pytest.raises(LogError, match=message):
        open_log(path)
    with pytest.raises(CommandError, match=message):
        call_command("replay_log", str(path), "--out", str(tmp_path / "o.csv"))


def test_command_user_mistakes_are_one_line_errors(tmp_path):
    log = write(tmp_path, "a.log", [COMBINED])
    with pytest.raises(CommandError, match="no such file"):
        call_command("replay_log", str(tmp_path / "nope.log"), "--out", str(tmp_path / "o.csv"))
    (tmp_path / "r.yaml").write_text("rules: {volume: {max_requests: x}}")
    with pytest.raises(CommandError, match="--rules: .*volume.max_requests must be a number"):
        call_command("replay_log", str(log), "--rules", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "o.csv"))
    with pytest.raises(CommandError, match="no line could be parsed as jsonl"):
        call_command("replay_log", str(log), "--format", "jsonl", "--out", str(tmp_path / "o.csv"))
    with pytest.raises(CommandError, match="--out: cannot write"):
        call_command("replay_log", str(log), "--out", str(tmp_path / "no" / "dir.csv"))


@pytest.fixture(scope="module")
def sample():
    return traffic.generate(world="polls", seed=11, hours=1, scale=2.0)


def test_replay_log_command_writes_the_flagged_csv(tmp_path, sample, capsys):
    log, labels = traffic.write_traffic(sample, tmp_path / "t.log.gz", tmp_path / "labels.csv")
    with gzip.open(log, "at") as fh:
        fh.write("this line is broken\n")
    out = tmp_path / "flagged.csv"
    call_command("replay_log", str(log), "--out", str(out))
    rows = list(csv.DictReader(out.open()))
    assert {"ip", "rules", "score", "reasons"} <= set(rows[0])
    printed = capsys.readouterr().out
    assert "1 malformed" in printed and "malformed line" in printed and f"wrote {len(rows)} row(s)" in printed
    assert "rule " in printed and "tripped" in printed  # the per-rule summary
    replayed = replay_file(log)
    assert {r["group"] for r in rows} == set(replayed.flagged)
    assert {r["ip"] for r in rows} == {ip for f in replayed.flagged.values() for ip in f.members()}
    first = replayed.flagged[rows[0]["group"]]
    assert rows[0]["rules"] == " ".join(first.rules) and float(rows[0]["score"]) == pytest.approx(first.score, abs=1e-4)


def test_the_csv_names_the_addresses_of_a_flagged_ipv6_64(tmp_path):
    """A /64 is judged as one client; its CSV rows name each address the log wrote, with the /64 as ``group``."""
    stamp = "03/Mar/2025:10:{:02d}:{:02d} +0000"
    lines = [
        f'2001:db8:7:7::{i % 9 + 1:x} - - [{stamp.format(i // 3, i * 20 % 60)}] "GET /wp-login.php HTTP/1.1" 404 0 '
        f'"-" "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0"'
        for i in range(27)
    ] + ['198.51.100.9 - - [03/Mar/2025:10:30:00 +0000] "GET /.env HTTP/1.1" 404 0 "-" "curl/8.5.0"']
    log = write(tmp_path, "six.log", lines)
    out = tmp_path / "flagged.csv"
    call_command("replay_log", str(log), "--out", str(out))
    rows = list(csv.DictReader(out.open()))
    groups = {r["ip"]: r["group"] for r in rows}
    assert groups == {**{f"2001:db8:7:7::{i:x}": "2001:db8:7:7::/64" for i in range(1, 10)},
                      "198.51.100.9": "198.51.100.9"}  # fmt: skip


def test_detector_beats_the_volume_baseline_on_the_committed_sample():
    from django.conf import settings

    data = settings.NEXUS_PROJECT_ROOT / "data"
    result = replay_file(data / "traffic-sample.log.gz")
    labels = traffic.read_labels(data / "traffic-sample-labels.csv")
    ours = evaluate.overall(result, labels)
    naive = evaluate.overall(result, labels, evaluate.volume_baseline(result.rules))
    curriculum = evaluate.overall(
        replay_file(data / "traffic-sample.log.gz", rules=evaluate.curriculum_rules(result.rules)), labels
    )
    # relative, not a tuned number: the defaults were not chosen on this sample, and they must beat both of the
    # curriculum's rules by a wide margin (volume only fires on the campus, the developer and real crawlers)
    assert ours["f1"] > max(naive["f1"], curriculum["f1"]) + 0.3
    assert naive["fp"] > 0


# ------------------------------------------------------------------------------------------- the task


def _window(sample):
    start = datetime.fromtimestamp(sample.records[0].ts // 3600 * 3600, tz=UTC)
    return start, start + timedelta(hours=1)


@pytest.mark.django_db
def test_task_flags_exactly_what_replay_flags(tmp_path, sample):
    log, _ = traffic.write_traffic(sample, tmp_path / "t.log", tmp_path / "l.csv")
    replayed = replay_file(log)
    request_log_load(open_log(log))
    start, end = _window(sample)
    result = detect_window(start=start, end=end, auto_block=False)
    assert result.flagged_ips == sorted(replayed.flagged)
    rows = {r.ip_address: r for r in SuspiciousIP.objects.all()}
    assert set(rows) == set(replayed.flagged)
    for ip, f in replayed.flagged.items():
        assert rows[ip].rules == sorted(f.rules) and rows[ip].score == pytest.approx(f.score)
    # and the app's JSONL export of the same rows replays to the same verdicts
    export = tmp_path / "export.jsonl"
    assert request_log_export_jsonl(export, start=start, end=end) == len(sample.records)
    again = replay_file(export)
    assert again.format == "jsonl" and set(again.flagged) == set(replayed.flagged)


@pytest.mark.django_db
def test_task_is_idempotent_and_updates_known_addresses(sample):
    request_log_load(sample.records)
    start, end = _window(sample)
    first = detect_window(start=start, end=end)
    before = {r["ip_address"]: r for r in SuspiciousIP.objects.values()}
    second = detect_window(start=start, end=end)
    assert second.written == 0 and first.written == len(before) > 0
    assert {r["ip_address"]: r for r in SuspiciousIP.objects.values()} == before  # not even updated_at moved

    # the next hour the scanner comes back with another trick: its row is updated, not duplicated
    scanner = next(ip for ip, label in sorted(sample.labels.items()) if label.label == "attack" and ip in before)
    later = end.timestamp() + 60
    request_log_load(
        Record(later + i, scanner, "POST", "/api/auth/token/", 401, "python-requests/2.31.0", "") for i in range(12)
    )
    detect_window(start=end, end=end + timedelta(hours=1))
    row = SuspiciousIP.objects.get(ip_address=scanner)
    assert SuspiciousIP.objects.filter(ip_address=scanner).count() == 1
    assert row.windows == 2 and "auth_failures" in row.rules and set(before[scanner]["rules"]) <= set(row.rules)
    assert row.window_start == end and row.first_seen == before[scanner]["first_seen"]
    assert "failed logins" in row.reason


@pytest.mark.django_db
def test_auto_block_only_for_rules_marked_so(sample, settings):
    settings.NEXUS_DETECTION_AUTO_BLOCK = True
    now = datetime.now(UTC)
    shift = (now.timestamp() // 3600 * 3600 - 3600) - sample.records[0].ts // 3600 * 3600
    request_log_load(r._replace(ts=r.ts + shift) for r in sample.records)
    result = detect_window()  # the last complete hour
    blocked = set(BlockedIP.objects.values_list("ip_address", flat=True))
    rules = load_rules()
    marked = {n for n in rules.names if rules.rule(n).get("block")}
    flagged = SuspiciousIP.objects.in_bulk(field_name="ip_address")
    assert blocked and result.blocked == len(blocked)
    assert all(set(flagged[ip].rules) & marked for ip in blocked)
    assert all(BlockedIP.objects.get(ip_address=ip).expires_at > now for ip in blocked)
    assert detect_window().blocked == 0  # the same window again: the blocks already cover it


@pytest.mark.django_db
def test_auto_block_of_one_address_found_in_two_windows_keeps_the_later_expiry():
    """A window spanning several hours gives one finding per hour for the same address (``manage.py load`` hit
    this: comparing an expiry with the previous finding's entry raised TypeError)."""
    from nexus_backend.tracking.detection.detector import Finding
    from nexus_backend.tracking.detection.services import suspicious_ip_autoblock

    now = datetime.now(UTC)
    hour = int(now.timestamp()) // 3600 * 3600

    def finding(window_end: int) -> Finding:
        return Finding(
            ip="203.0.113.77",
            window_start=window_end - 3600,
            window_end=window_end,
            rules=["cms_probe"],
            score=1.0,
            flagged=True,
            reasons=["probed CMS paths"],
            evidence={},
            first_seen=window_end - 60,
            last_seen=window_end - 1,
            block_minutes=120,
        )

    assert suspicious_ip_autoblock(findings=[finding(hour), finding(hour - 3600)], now=now) == 1
    block = BlockedIP.objects.get(ip_address="203.0.113.77")
    assert block.expires_at == datetime.fromtimestamp(hour, tz=UTC) + timedelta(minutes=120)
    assert block.reason == "auto: cms_probe"


def test_the_chunk_task_is_sent_by_its_registered_name():
    """The replay names the task (tasks.py imports the replay, not the reverse): the name must be the task's."""
    from nexus_backend.tracking import tasks
    from nexus_backend.tracking.detection import replay

    assert replay.REPLAY_CHUNK_TASK == tasks.replay_chunk.name
