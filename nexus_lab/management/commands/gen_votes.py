"""``manage.py gen_votes --votes 1000000``: seeded polls, options, users and votes at scale, loaded with COPY.

    python manage.py gen_votes --votes 1000000               # ~1,000 polls, hottest poll ~130k votes
    python manage.py gen_votes --votes 50000 --polls 20 --options 5 --seed 3 --prefix mine_
    python manage.py gen_votes --delete --prefix mine_        # remove what a prefix generated

Running it again with the same prefix replaces that prefix's data; nobody else's rows are touched.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from nexus_lab.polls import datagen


def _count(text: str) -> int:
    """``1000000``, ``1_000_000``, ``1e6``, ``100k``, ``1m`` -> an int (anything else is a clear error)."""
    raw = text.strip().lower().replace("_", "").replace(",", "")
    factor = 1
    if raw[-1:] in ("k", "m"):
        factor, raw = (1_000 if raw[-1] == "k" else 1_000_000), raw[:-1]
    try:
        value = float(raw) * factor
    except ValueError:
        raise CommandError(f"not a number of rows: {text!r} (try 100000, 100k or 1e6)") from None
    if value != int(value):
        raise CommandError(f"not a whole number of rows: {text!r}")
    return int(value)


class Command(BaseCommand):
    help = "Generate seeded polls, options, users and votes at a given scale with PostgreSQL COPY."

    def add_arguments(self, parser):
        parser.add_argument("--votes", type=str, default="100000", help="total votes (100000, 100k, 1e6; default 100k)")
        parser.add_argument("--polls", type=int, default=None, help="polls (default: votes/1000, between 10 and 1000)")
        parser.add_argument("--options", type=int, default=4, help="options per poll (2-20, default 4)")
        parser.add_argument("--users", type=int, default=None, help="users (default: enough for the hottest poll)")
        parser.add_argument("--skew", type=float, default=1.0, help="Zipf exponent of votes over polls (0 = even)")
        parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
        parser.add_argument("--prefix", default=datagen.DEFAULT_PREFIX, help="username prefix owning the data")
        parser.add_argument("--delete", action="store_true", help="only delete what --prefix generated")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **opts):
        try:
            if opts["delete"]:
                gone = datagen.delete(prefix=opts["prefix"])
                self.stdout.write(
                    f"deleted {gone['users']:,} users, {gone['polls']:,} polls, {gone['votes']:,} votes "
                    f"(prefix {opts['prefix']})"
                )
                return
            scale = datagen.plan_scale(
                votes=_count(opts["votes"]),
                polls=opts["polls"],
                options=opts["options"],
                users=opts["users"],
                skew=opts["skew"],
            )
            self.stdout.write(f"generating {datagen.describe(scale)} (seed {opts['seed']}, prefix {opts['prefix']})")
            made = datagen.generate(
                votes=scale.votes,
                polls=scale.polls,
                options=scale.options,
                users=scale.users,
                skew=scale.skew,
                seed=opts["seed"],
                prefix=opts["prefix"],
                progress=not opts["no_progress"] and opts["verbosity"] > 0,
            )
        except datagen.ScaleError as exc:
            raise CommandError(str(exc)) from None
        if opts["json"]:
            self.stdout.write(json.dumps(made.as_dict(), indent=2))
            return
        steps = ", ".join(f"{k.removesuffix('_s')} {v:.1f}s" for k, v in made.timings.items())
        self.stdout.write(
            f"loaded {made.votes:,} votes, {made.polls:,} polls, {made.polls * made.options:,} options, "
            f"{made.users:,} users in {made.seconds:.1f} s ({made.rows_per_second:,.0f} rows/s; {steps}); "
            f"hottest poll: id {made.hot_poll_id} with {made.hot_poll_votes:,} votes"
        )
