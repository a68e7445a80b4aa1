"""``manage.py load``: normal users, then normal users with attackers, against a real gunicorn; a table of what
each class of client saw and what the defences did (``nexus_lab.load``).

    python manage.py load                   # 2 x 120 s (about 5 minutes with setup and detection)
    python manage.py load --duration 60     # shorter phases
    python manage.py load --quick           # 2 x 15 s, 4 users: the test's run
"""

from __future__ import annotations

import signal
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from nexus_lab import load
from nexus_lab.benchmark import publish, raise_on_sigterm


def _think(value: str) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in value.split(","))
    except ValueError:
        raise CommandError(f"--think must be MIN,MAX seconds like 1,4 (got {value!r})") from None
    return low, high


class Command(BaseCommand):
    help = (
        "Load with abuse: run normal users alone, then normal users with attackers (credential stuffing, vote "
        "stuffing, scanners), against a real gunicorn with request logging, rate limits, the block list and the "
        "suspicious-IP detector; print per phase and client class the requests, errors, p50/p95 latency, 429s, "
        "block-list 403s and flagged addresses, and the verdicts. Exits 1 when normal users saw errors or an "
        "attacker class got through unnoticed (the p95 ratio is reported, not enforced)."
    )

    def add_arguments(self, parser):
        defaults = load.LoadConfig()
        parser.add_argument(
            "--duration", type=float, default=None, help=f"seconds per phase (default {defaults.duration:g})"
        )
        parser.add_argument("--users", type=int, default=None, help=f"normal users (default {defaults.users})")
        parser.add_argument(
            "--think",
            default=None,
            metavar="MIN,MAX",
            help=f"seconds a normal user waits between actions (default {defaults.think[0]:g},{defaults.think[1]:g})",
        )
        parser.add_argument(
            "--stuffer-ips",
            type=int,
            default=None,
            help=f"addresses of the credential stuffers (default {defaults.stuffer_ips}; each one costs the server "
            "a password hash per attempt until its login limit answers 429)",
        )
        parser.add_argument(
            "--workers", type=int, default=defaults.workers, help=f"gunicorn sync workers (default {defaults.workers})"
        )
        parser.add_argument(
            "--attack-scale",
            type=float,
            default=defaults.attack_scale,
            help="multiply every attacker's request rate (default 1: "
            + ", ".join(f"{k} {v:g}/s" for k, v in load.RATES.items())
            + " per address)",
        )
        parser.add_argument(
            "--detect-every",
            type=float,
            default=None,
            help=f"run the detector every N s during a phase, 0: only after (default {defaults.detect_every:g})",
        )
        parser.add_argument(
            "--no-auto-block",
            action="store_true",
            help="do not block flagged addresses (the detector only flags; no block-list 403s)",
        )
        parser.add_argument(
            "--quick", action="store_true", help="15 s phases, 4 users, 1 stuffer address, detector every 4 s"
        )
        parser.add_argument("--seed", type=int, default=0, help="random seed of the clients (default 0)")
        parser.add_argument(
            "--keep-data", action="store_true", help="keep the run's accounts, polls, logs, findings and blocks"
        )
        parser.add_argument("--json", dest="json_path", help="also write the JSON results to this path")
        parser.add_argument("--results-dir", help="folder for load-<time>.json (default: bench/results)")

    def handle(self, *args, **opts):
        quick = opts["quick"]
        config = load.LoadConfig(
            duration=opts["duration"] if opts["duration"] is not None else (15.0 if quick else 120.0),
            users=opts["users"] if opts["users"] is not None else (4 if quick else 30),
            stuffer_ips=opts["stuffer_ips"] if opts["stuffer_ips"] is not None else (1 if quick else 3),
            think=_think(opts["think"]) if opts["think"] else (1.0, 3.0 if quick else 4.0),
            workers=opts["workers"],
            attack_scale=opts["attack_scale"],
            detect_every=opts["detect_every"] if opts["detect_every"] is not None else (4.0 if quick else 30.0),
            auto_block=not opts["no_auto_block"],
            seed=opts["seed"],
            keep_data=opts["keep_data"],
        )
        previous_term = raise_on_sigterm()  # SIGTERM, like Ctrl-C, runs the cleanup that stops gunicorn
        try:
            result = load.run(config, echo=self.stdout.write)
        except load.LoadError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            raise CommandError("interrupted; gunicorn and the clients were stopped") from None
        finally:
            if previous_term is not None:
                signal.signal(signal.SIGTERM, previous_term)
        self.stdout.write(load.table(result))
        started = datetime.fromisoformat(result["timestamp"])
        publish(result, name="load", started=started, options=opts, write=self.stdout.write)
        if not load.passed(result):
            raise CommandError("load with abuse: a verdict failed (see the table above)")
