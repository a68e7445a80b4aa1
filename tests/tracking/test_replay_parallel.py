"""Replay on several cores (``detection/parallel.py``) gives exactly what one process gives: the same findings
(rules, scores, evidence), the same aggregates and the same parse counts, malformed-line numbers included."""

from __future__ import annotations

import gzip

from nexus_backend.tracking.detection.parallel import cuts, processes_for
from nexus_backend.tracking.detection.parsers import format_combined, open_log
from nexus_backend.tracking.detection.replay import replay_file
from nexus_lab import traffic


def _log(tmp_path):
    t = traffic.generate(world="site", hours=3, scale=0.5, seed=5)
    lines = [format_combined(r) for r in t.records]
    for at in (7, len(lines) // 2, len(lines) - 3):  # malformed lines spread over the ranges
        lines.insert(at, f"garbage line {at}")
    lines.insert(100, "")
    path = tmp_path / "site.log"
    path.write_text("\r\n".join(lines) + "\n")  # CRLF: ranges still cut at line starts
    return path


def test_parallel_replay_gives_the_same_verdicts_as_one_process(tmp_path):
    path = _log(tmp_path)
    one = replay_file(path, processes=1)
    for processes in (2, 3):
        many = replay_file(path, processes=processes)
        assert [f.__dict__ for f in many.findings] == [f.__dict__ for f in one.findings]
        assert many.stats.as_dict() == one.stats.as_dict()
        assert list(many.aggregator.stats) == list(one.aggregator.stats)
        assert {k: s.to_json() for k, s in many.aggregator.stats.items()} == {
            k: s.to_json() for k, s in one.aggregator.stats.items()
        }
    assert one.stats.malformed == 3 and one.stats.blank == 1
    assert len(one.flagged) > 10  # the comparison is about something


def test_ranges_start_at_line_starts(tmp_path):
    path = _log(tmp_path)
    data = path.read_bytes()
    spans = cuts(path, 4)
    assert spans[0][0] == 0 and spans[-1][1] == len(data)
    assert all(a == 0 or data[a - 1 : a] == b"\n" for a, _ in spans)
    assert all(b == c for (_, b), (c, _) in zip(spans, spans[1:], strict=False))


def test_gzip_and_small_files_use_one_process(tmp_path):
    path = _log(tmp_path)
    packed = tmp_path / "site.log.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert processes_for(open_log(packed), 4) == 1
    assert processes_for(open_log(path), None) == 1  # under MIN_BYTES
    assert processes_for(open_log(path), 3) == 3
