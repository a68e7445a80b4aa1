"""``manage.py gen_traffic``: seeded, labelled poll-API traffic (combined log + ip,label,population CSV)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from nexus_backend.tracking import traffic


class Command(BaseCommand):
    help = "Write a seeded combined-format log of poll-API traffic and its ground-truth labels (data/traffic-*)."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--hours", type=int, default=1, help="hours of traffic (default 1)")
        parser.add_argument("--scale", type=float, default=1.0, help="size of the crowds (1: ~6,000 lines an hour)")
        parser.add_argument("--out", default="data/traffic.log", help="the log (.gz: gzip); default data/traffic.log")
        parser.add_argument("--labels", default=None, help="the labels CSV (default: beside the log, -labels.csv)")

    def handle(self, *args, seed, hours, scale, out, labels, **options):
        if hours < 1 or scale <= 0:
            raise CommandError("--hours must be at least 1 and --scale positive")
        labels = labels or out.removesuffix(".gz").removesuffix(".log") + "-labels.csv"
        t = traffic.generate(seed=seed, hours=hours, scale=scale)
        try:
            log_path, labels_path = traffic.write_traffic(t, out, labels)
        except OSError as exc:
            raise CommandError(f"cannot write ({exc})") from None
        attacks = sum(1 for label, _ in t.labels.values() if label == "attack")
        self.stdout.write(
            f"{len(t.records):,} requests from {len(t.labels):,} addresses ({attacks:,} attack) "
            f"-> {log_path}, {labels_path}"
        )
