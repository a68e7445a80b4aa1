"""Exercises that check themselves: ``from nexus_lab.notebooks.exercises import check``, then
``check("04.1", answer)`` prints whether the answer is right, with a hint when it is not.

The expected answers are never written here as plain values a learner could read off:

- most are **computed from the live backend** at the moment of the check (a setting, a package constant, the
  status of a real request through the API), so they follow the code when it changes;
- the few that are words (a concept, not a number the backend holds) are stored as **SHA-256 digests** of the
  normalised answer.

A hint never contains the answer (``tests/notebooks/test_exercises.py`` checks every one). An exercise left at its
default (``answer = None`` or ``...``) prints "not answered yet" and returns ``None``: notebooks run by
``make reports`` and nbval never fail on an unanswered exercise.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

__all__ = ["EXERCISES", "Exercise", "check", "exercises_of", "expected_answer", "is_right"]


def normalise(value: Any) -> Any:
    """One spelling per answer: text stripped and lower-cased, whole floats as ints, collections as sorted tuples."""
    if isinstance(value, str):
        return " ".join(value.strip().lower().split())
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, set | frozenset | list | tuple):
        return tuple(sorted((normalise(v) for v in value), key=repr))
    return value


def digest(value: Any) -> str:
    """The SHA-256 of an answer's normalised text (how word answers are stored)."""
    return hashlib.sha256(repr(normalise(value)).encode()).hexdigest()


@dataclass(frozen=True)
class Exercise:
    key: str  # "<notebook>.<n>", e.g. "04.1"
    question: str
    hint: str  # shown after a wrong answer; never contains the answer
    expected: Callable[[], Any] | None = None  # computed from the live backend at check time
    sha256: str | None = None  # or: the digest of the normalised answer
    tolerance: float = 1e-9  # relative, for numeric answers

    def right(self, answer: Any) -> bool:
        if self.sha256 is not None:
            return digest(answer) == self.sha256
        assert self.expected is not None, "an exercise sets expected or sha256"
        expected = self.expected()
        if isinstance(expected, int | float) and not isinstance(expected, bool):
            if isinstance(answer, bool) or not isinstance(answer, int | float):
                return False
            return math.isclose(float(answer), float(expected), rel_tol=self.tolerance, abs_tol=self.tolerance)
        return normalise(answer) == normalise(expected)


# --------------------------------------------------------------------------- answers read from the live backend


def _status_of(method: str, path: str, **extra) -> int:
    from django.test import Client

    return getattr(Client(), method)(path, **extra).status_code


def _error_code_of_unknown_path() -> str:
    from django.test import Client

    return Client().get("/no-such-page-for-exercises/").json()["code"]


def _already_voted_status() -> int:
    from nexus_backend.polls.services import AlreadyVoted

    return AlreadyVoted.status_code


def _results_strategy() -> str:
    from nexus_backend.polls import counting

    return counting.RESULTS_STRATEGY


def _results_ttl() -> float:
    from nexus_backend.caching import keys

    return keys.ttl_of(keys.POLL_RESULTS)


def _hit_ratio_example() -> float | None:
    from nexus_backend.caching.metrics import hit_ratio

    return hit_ratio(45, 15)


def _backoff_before_retry(retries: int) -> float:
    from celery.utils.time import get_exponential_backoff_interval

    from nexus_lab.notebooks.lab_tasks import flaky

    return get_exponential_backoff_interval(
        factor=flaky.retry_backoff, retries=retries, maximum=flaky.retry_backoff_max, full_jitter=False
    )


def _detection_minute() -> int:
    from django.conf import settings

    minutes = settings.CELERY_BEAT_SCHEDULE["detect-suspicious-ips"]["schedule"].minute
    (minute,) = minutes
    return minute


def _pending_outbox() -> int:
    from nexus_backend.core import outbox

    return outbox.pending_count()


def _jwt_algorithm() -> str:
    from django.conf import settings

    return cast(str, settings.SIMPLE_JWT["ALGORITHM"])


def _access_lifetime_seconds() -> float:
    from django.conf import settings

    return cast(timedelta, settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]).total_seconds()


def _forged_token_status() -> int:
    return _status_of("get", "/api/polls/", HTTP_AUTHORIZATION="Bearer eyJhbGciOiJIUzI1NiJ9.e30.forged")


def _request_id_header() -> str:
    from nexus_backend.core import request_id

    return request_id.HEADER


def _latency_count_series() -> str:
    from nexus_backend.core.prometheus import REQUEST_LATENCY

    return f"{REQUEST_LATENCY._name}_count"


def _catalog_one(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)
        (name,) = cursor.fetchone()
    return name


def _composite_vote_fk() -> str:
    """The foreign key of polls_vote that spans two columns, read from PostgreSQL's catalog."""
    return _catalog_one(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'polls_vote'::regclass AND contype = 'f' "
        "AND cardinality(conkey) = 2"
    )


def _index_only_count_index() -> str:
    """The index of polls_vote on exactly (poll_id, option_id), in that order, read from the catalog."""
    return _catalog_one(
        "SELECT i.indexrelid::regclass::text FROM pg_index i WHERE i.indrelid = 'polls_vote'::regclass "
        "AND (SELECT array_agg(a.attname::text ORDER BY k.n) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) = ARRAY['poll_id', 'option_id']"
    )


CURRICULUM_PATH_CANDIDATES = ("/admin", "/admin/login/", "/administrator", "/api/login", "/login", "/login/")


def _curriculum_sensitive_paths() -> set[str]:
    import re

    from nexus_lab.detection.evaluate import CURRICULUM_PATHS

    return {p for p in CURRICULUM_PATH_CANDIDATES if any(re.search(rx, p) for rx in CURRICULUM_PATHS)}


def _f1_example() -> float:
    """F1 of a detector that flags 8 of 100 addresses, 6 of them among the 12 attackers (through evaluate.confusion)."""
    from nexus_lab.detection.evaluate import confusion

    addresses = [f"198.51.100.{i}" for i in range(1, 101)]
    labels = {ip: ("attack" if i < 12 else "benign", "example") for i, ip in enumerate(addresses)}
    flagged = addresses[:6] + addresses[50:52]
    return confusion(flagged, labels, addresses)["f1"]


EXERCISES: dict[str, Exercise] = {
    e.key: e
    for e in [
        # 00 — the tour
        Exercise(
            "00.1",
            "Which HTTP status does the API answer to a second vote by the same user in the same poll? (an int)",
            "Look at section 5: the rule is a unique constraint, mapped to a domain error in polls/services.py.",
            expected=_already_voted_status,
        ),
        Exercise(
            "00.2",
            "Which counting strategy does GET /api/polls/{id}/results/ read? (its name, a string)",
            "Section 7 names the setting that chooses it: counting.RESULTS_STRATEGY.",
            expected=_results_strategy,
        ),
        Exercise(
            "00.3",
            "Which request header carries the access token? (its name)",
            "Section 3 sets it on the client with client.credentials(...).",
            sha256="af94da5c1c090371b66c90399c5a3fb5483916ab3d84f9a78ca63e4f8a18e183",
        ),
        # 01 — schema design
        Exercise(
            "01.1",
            "Which constraint refuses a vote for an option that belongs to another poll? (its name)",
            "Section 1 lists the constraints of polls_vote: one of its foreign keys spans two columns.",
            expected=_composite_vote_fk,
        ),
        Exercise(
            "01.2",
            "Which index lets PostgreSQL count a poll's votes per option from the index alone? (its name)",
            "Section 4.1: the plan with every index is an Index Only Scan; the index's columns are the WHERE and "
            "the GROUP BY of the count query.",
            expected=_index_only_count_index,
        ),
        Exercise(
            "01.3",
            "Under which counting strategy do concurrent voters for one option queue behind a row lock? (its name)",
            "Section 5.4: look for the strategy whose voters wait on transactionid and tuple; it runs an UPDATE of "
            "polls_option in every vote's transaction.",
            sha256="581fb5bd9d6a29951b11e0df5cdcbf0009de9c5244cda3e468af4a088e568d82",
        ),
        # 02 — suspicious-IP detection
        Exercise(
            "02.1",
            "Among 100 addresses, 12 are attackers. A detector flags 8 addresses, 6 of them attackers. What is its "
            "F1? (a float between 0 and 1)",
            "Section 1: precision = TP / (TP + FP), recall = TP / (TP + FN), F1 their harmonic mean.",
            expected=_f1_example,
            tolerance=1e-6,
        ),
        Exercise(
            "02.2",
            "Which of the paths " + ", ".join(CURRICULUM_PATH_CANDIDATES) + " does the curriculum's rule treat as "
            "sensitive? (a set of paths)",
            "Its patterns (evaluate.CURRICULUM_PATHS) are anchored at the start of the path and must end at a slash "
            "or at the end of the path: a substring is not enough.",
            expected=_curriculum_sensitive_paths,
        ),
        Exercise(
            "02.3",
            "A scanner sends one probe and the detector does not flag it. Which count of the confusion table does it "
            "add to? (tp, fp, fn or tn)",
            "It is an attacker, and it was not flagged: section 1 names the four counts.",
            sha256="07f509c42a5b08df04be5fc9e846247fba1d2273566fe53df4cdc742f08420d7",
        ),
        # 03 — cache performance
        Exercise(
            "03.1",
            "For how many seconds may a poll's results stay in the cache before they expire (the TTL)? (a number)",
            "caching/keys.py holds every namespace and its TTL; keys.ttl_of() applies the overrides.",
            expected=_results_ttl,
        ),
        Exercise(
            "03.2",
            "A window counted 45 hits and 15 misses. What is its hit ratio? (a float between 0 and 1)",
            "hit ratio = hits / (hits + misses), as caching.metrics.hit_ratio computes it.",
            expected=_hit_ratio_example,
        ),
        Exercise(
            "03.3",
            "Which invalidation strategy drops only the entries a write made stale? (its name)",
            "Section 6 compares the three strategies: one drops every entry, one drops none, one drops only some.",
            sha256="aa1841bef57a6b96688370090b20bceb83f9f3768fa36f7d52a17ba093dda362",
        ),
        # 04 — background tasks
        Exercise(
            "04.1",
            "flaky retries with exponential backoff and no jitter. How many seconds does Celery wait before running it "
            "again after the attempt with request.retries == 3 fails? (a number)",
            "The countdown doubles with every retry, starting from the task's retry_backoff factor.",
            expected=lambda: _backoff_before_retry(3),
        ),
        Exercise(
            "04.2",
            "At which minute of every hour does beat send the suspicious-IP detection task? (an int, 0-59)",
            "Read settings.CELERY_BEAT_SCHEDULE['detect-suspicious-ips']['schedule'], or the table in section 5.",
            expected=_detection_minute,
        ),
        Exercise(
            "04.3",
            "How many outbox messages are waiting for the broker right now? (an int; count them in the database)",
            "OutboxMessage rows whose sent_at is still empty; core/outbox.py has a function for it.",
            expected=_pending_outbox,
        ),
        Exercise(
            "04.4",
            "Which two task options make a task killed with its worker run again? (a set of two option names)",
            "Look at the decorator of polls.tasks.close_poll: one option moves the acknowledgement, one rejects "
            "the message when the worker is lost.",
            sha256="0b7065a66e7ac3485715b73a481fca0766e09eb14c5629ecb6fc607ecfe14b6d",
        ),
        # 05 — auth and rate limits
        Exercise(
            "05.1",
            "Which algorithm signs the access tokens? (the alg of the JWT header)",
            "Decode the header in section 1, or read settings.SIMPLE_JWT.",
            expected=_jwt_algorithm,
        ),
        Exercise(
            "05.2",
            "For how many seconds is an access token valid? (a number)",
            "exp minus iat in the decoded payload of section 1.",
            expected=_access_lifetime_seconds,
        ),
        Exercise(
            "05.3",
            "Which HTTP status does the API answer to a forged token, even on a public GET? (an int)",
            "Section 3 sends one: a token that does not verify is refused before the view runs.",
            expected=_forged_token_status,
        ),
        Exercise(
            "05.4",
            "With no trusted proxy configured (the default), a client at 203.0.113.5 sends "
            "'X-Forwarded-For: 198.51.100.1'. Which address do the rate limits key on?",
            "Section 5: without a trusted proxy the header is the client's own words.",
            sha256="8fdc33f8ea3c7dfd0f0a02db17e43883ff2f01339cf0677d1350ab1dfd7e10ad",
        ),
        # 06 — logs and metrics
        Exercise(
            "06.1",
            "Which response header carries the request id? (its name)",
            "Section 1 reads it from the response; core/request_id.py defines it.",
            expected=_request_id_header,
        ),
        Exercise(
            "06.2",
            "What is the 'code' in the JSON body of the 404 for a path no route matches?",
            "Section 5 shows the error shape; core/exceptions.py has the handler for unknown paths.",
            expected=_error_code_of_unknown_path,
        ),
        Exercise(
            "06.3",
            "Which series of /metrics counts the requests the latency histogram observed? (a metric name)",
            "A Prometheus histogram exposes _bucket, _sum and one more series; section 3 reads them.",
            expected=_latency_count_series,
        ),
    ]
}


def exercises_of(notebook: str) -> list[Exercise]:
    """The exercises of notebook ``"04"`` (or ``"04-background-tasks"``), in order."""
    prefix = notebook.split("-", 1)[0] + "."
    return [e for key, e in EXERCISES.items() if key.startswith(prefix)]


def expected_answer(key: str) -> Any:
    """The expected answer of a computed exercise (for the tests; notebooks never print it)."""
    exercise = EXERCISES[key]
    if exercise.expected is None:
        raise ValueError(f"exercise {key} stores a digest, not a value")
    return exercise.expected()


def is_right(key: str, answer: Any) -> bool:
    return EXERCISES[key].right(answer)


def check(key: str, answer: Any) -> bool | None:
    """Print the verdict on ``answer`` to exercise ``key``: right, not yet (with the hint), or not answered yet.

    Returns True / False, or None when ``answer`` is still ``None`` or ``...`` (never raises for those)."""
    try:
        exercise = EXERCISES[key]
    except KeyError:
        raise KeyError(f"no exercise {key!r} (known: {', '.join(EXERCISES)})") from None
    if answer is None or answer is Ellipsis:
        print(f"{key}: not answered yet. Replace the ... with your answer and run this cell again.")
        return None
    if exercise.right(answer):
        print(f"{key}: right.")
        return True
    print(f"{key}: not yet. Hint: {exercise.hint}")
    return False
