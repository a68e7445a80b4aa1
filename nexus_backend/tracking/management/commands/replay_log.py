"""``manage.py replay_log PATH --out FLAGGED.csv``: the detector of the hourly task, over a log file."""

from __future__ import annotations

import csv
import sys

from django.core.management.base import BaseCommand, CommandError

from nexus_backend.tracking.client_ip import normalize_ip
from nexus_backend.tracking.detection.parsers import FORMATS, LogError
from nexus_backend.tracking.detection.replay import replay_distributed, replay_file
from nexus_backend.tracking.detection.rules import RulesError, load_rules

# One row per address seen; an IPv6 address is judged with the rest of its /64 (``group``, whose verdict and
# request count each of its rows repeats), so the rows name addresses as the log wrote them.
COLUMNS = ["ip", "rules", "score", "reasons", "requests", "first_seen", "last_seen", "window_start", "group"]


class Command(BaseCommand):
    help = (
        "Replay an Apache/Nginx (combined, common, or Apache's vhost_ forms of both) or JSONL request log, plain or "
        "gzip, through the suspicious-IP detector and write one CSV row per flagged address (ip,rules,score,...)."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="PATH", help="the log file (.gz accepted)")
        parser.add_argument("--format", default="auto", choices=["auto", *FORMATS], help="default: detected")
        parser.add_argument("--rules", metavar="FILE", help="a rules file laid over the defaults (rules.yaml)")
        parser.add_argument("--out", metavar="FLAGGED.csv", required=True, help="where to write the flagged addresses")
        parser.add_argument(
            "--all", action="store_true", help="also write addresses that tripped a rule but not the threshold"
        )
        parser.add_argument(
            "--workers", type=int, default=0, metavar="N", help="spread over N Celery tasks (workers must run)"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument(
            "--explain", metavar="IP", help="also print the verdict on IP and the requests behind it, as classified"
        )

    def handle(self, *args, path, format, rules, out, all, workers, no_progress, explain, **options):
        if explain is not None and normalize_ip(explain.strip()) is None and "/" not in explain:
            raise CommandError(f"--explain: {explain!r} is not an IP address")
        try:
            ruleset = load_rules(rules)
        except RulesError as exc:
            raise CommandError(f"--rules: {exc}") from None
        try:
            if workers > 0:
                result = replay_distributed(path, chunks=workers, fmt=format, rules_path=rules)
            else:
                progress = not no_progress and sys.stderr.isatty()
                result = replay_file(path, fmt=format, rules=ruleset, progress=progress)
        except LogError as exc:
            raise CommandError(str(exc)) from None
        if result.stats.parsed == 0:
            raise CommandError(
                f"{path}: no line could be parsed as {result.format} "
                f"({result.stats.malformed:,} malformed, {result.stats.blank:,} blank)"
            )
        verdicts = sorted((f for f in result.verdicts.values() if all or f.flagged), key=lambda f: (-f.score, f.ip))
        rows = [{**f.as_row(), "ip": ip, "group": f.ip, "flagged": f.flagged} for f in verdicts for ip in f.members()]
        try:
            with open(out, "w", encoding="utf-8", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=COLUMNS + (["flagged"] if all else []), extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
        except OSError as exc:
            raise CommandError(f"--out: cannot write {out} ({exc.strerror or exc})") from None
        self.stdout.write(result.summary())
        self.stdout.write(f"wrote {len(rows):,} row(s) ({len(verdicts):,} address(es) or /64 group(s)) to {out}")
        if explain is not None:
            self.stdout.write(result.explain(normalize_ip(explain.strip()) or explain.strip()))
