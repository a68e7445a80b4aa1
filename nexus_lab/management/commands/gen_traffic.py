"""``manage.py gen_traffic``: a seeded, labelled world of web traffic (combined log + labels CSV)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from nexus_lab import traffic


class Command(BaseCommand):
    help = (
        "Write a seeded combined-format log of one generated world (polls, site, personal) and its ground truth "
        "(ip,label,population,family,hard_benign,world)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--world", default="polls", help=f"one of {', '.join(traffic.WORLDS)} (default polls)")
        parser.add_argument("--seed", type=int, default=None, help="default: the world's own seed")
        parser.add_argument("--hours", type=int, default=48, help="hours of traffic (default 48)")
        parser.add_argument("--scale", type=float, default=1.0, help="members a day multiplier (default 1)")
        parser.add_argument("--out", default="data/generated/traffic.log.gz", help="the log (.gz: gzip)")
        parser.add_argument("--labels", default=None, help="the labels CSV (default: beside the log, -labels.csv)")

    def handle(self, *args, world, seed, hours, scale, out, labels, **options):
        labels = labels or out.removesuffix(".gz").removesuffix(".log") + "-labels.csv"
        try:
            t = traffic.generate(world=world, seed=seed, hours=hours, scale=scale)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        try:
            log_path, labels_path = traffic.write_traffic(t, out, labels)
        except OSError as exc:
            raise CommandError(f"cannot write ({exc})") from None
        attacks = sum(1 for label in t.labels.values() if label.label == "attack")
        self.stdout.write(
            f"world {t.world} (seed {t.seed}): {len(t.records):,} requests from {len(t.labels):,} addresses "
            f"({attacks:,} attack) -> {log_path}, {labels_path}"
        )
