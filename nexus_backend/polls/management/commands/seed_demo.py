"""``manage.py seed_demo``: load (or rebuild) the demo users, polls and votes. Same arguments, same data."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from nexus_backend.polls.demo import DEMO_PASSWORD, DEMO_PREFIX, demo_seed


class Command(BaseCommand):
    help = "Create or rebuild the demo users, polls and votes (idempotent; users are prefixed 'demo_')."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=7, help="random seed for owners and votes (default 7)")
        parser.add_argument("--polls", type=int, default=6, help="how many polls (default 6)")
        parser.add_argument("--users", type=int, default=40, help="how many demo users (default 40)")

    def handle(self, *args, seed: int, polls: int, users: int, **options):
        try:
            summary = demo_seed(seed=seed, polls=polls, users=users, prefix=DEMO_PREFIX)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"demo data: {summary['users']} users ({summary['users_created']} new), "
            f"{summary['polls']} polls, {summary['votes']} votes (seed {seed}); "
            f"log in as {DEMO_PREFIX}user001 / {DEMO_PASSWORD}"
        )
