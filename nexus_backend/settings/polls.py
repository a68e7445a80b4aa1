"""Counting votes (nexus_backend/polls/counting.py) and the bounds on what polls, search and sign-up accept
(docs/security.md)."""

from __future__ import annotations

from .env import PRODUCTION, env_choice, env_float, env_int, env_list

POLLS_COUNTING_STRATEGIES = ("count", "counter", "summary", "delta")  # counting.STRATEGIES (a test keeps them equal)
# What the results endpoint and GraphQL read, and how a vote is counted ("delta": exact and lock-free for voters).
POLLS_RESULTS_STRATEGY = env_choice("POLLS_RESULTS_STRATEGY", "delta", POLLS_COUNTING_STRATEGIES)
# How often the fold_vote_deltas task moves pending deltas into the counters (reads stay exact in between; the
# interval bounds how many pending rows a read scans).
POLLS_DELTA_FOLD_SECONDS = env_float("POLLS_DELTA_FOLD_SECONDS", 1.0, 0.1)

# A poll's expiry at most this many days ahead (each expiry is a Celery ETA task; year 9999 is refused with 400).
NEXUS_POLL_MAX_LIFETIME_DAYS = env_int("NEXUS_POLL_MAX_LIFETIME_DAYS", 365, 1)
# ?search= on the poll list: at most this many words and characters (400 on `search` beyond them).
NEXUS_SEARCH_MAX_TERMS = env_int("NEXUS_SEARCH_MAX_TERMS", 5, 1)
NEXUS_SEARCH_MAX_LENGTH = env_int("NEXUS_SEARCH_MAX_LENGTH", 100, 1)
# Username prefixes sign-up refuses (400 on username): generated users are rebuilt and removed by prefix, and the
# demo password is published. Development leaves tour_ to the tour notebook, which signs up tour_ada on the API.
NEXUS_RESERVED_USERNAME_PREFIXES = [
    p.lower()
    for p in env_list("NEXUS_RESERVED_USERNAME_PREFIXES", "demo_,tour_,bench_" if PRODUCTION else "demo_,bench_")
]
