"""The exercise checker: right, wrong, unanswered; hints never give the answer away; every exercise has a solution."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from django.conf import settings

from nexus_lab.notebooks import exercises
from nexus_lab.notebooks.exercises import EXERCISES, check, exercises_of, expected_answer, is_right

NOTEBOOKS = Path(settings.BASE_DIR) / "notebooks"
# The word answers stored as digests, for the tests only (the package never holds them in plain text).
WORD_ANSWERS = {
    "00.3": "Authorization",
    "01.3": "counter",
    "02.3": "fn",
    "03.3": "precise",
    "04.4": {"acks_late", "reject_on_worker_lost"},
    "05.4": "203.0.113.5",
}


def right_answer(key: str):
    return WORD_ANSWERS[key] if EXERCISES[key].sha256 else expected_answer(key)


def wrong_answer(answer):
    if isinstance(answer, bool):
        return not answer
    if isinstance(answer, int | float):
        return answer * 3 + 7
    if isinstance(answer, set):
        return {"ignore_result"}
    return f"{answer}-not"


pytestmark = pytest.mark.django_db


def test_every_word_answer_of_the_tests_is_the_stored_digest():
    assert {k for k, e in EXERCISES.items() if e.sha256} == set(WORD_ANSWERS)
    for key, answer in WORD_ANSWERS.items():
        assert exercises.digest(answer) == EXERCISES[key].sha256, key


@pytest.mark.parametrize("key", list(EXERCISES))
def test_the_right_answer_is_right(key, capsys):
    assert check(key, right_answer(key)) is True
    assert capsys.readouterr().out == f"{key}: right.\n"


@pytest.mark.parametrize("key", list(EXERCISES))
def test_a_wrong_answer_gets_the_hint_and_never_the_answer(key, capsys):
    answer = right_answer(key)
    assert check(key, wrong_answer(answer)) is False
    out = capsys.readouterr().out
    assert out.startswith(f"{key}: not yet. Hint: ") and EXERCISES[key].hint in out
    for word in answer if isinstance(answer, set) else [answer]:
        if isinstance(word, bool):
            continue
        text = f"{word:g}" if isinstance(word, float) else str(word)
        assert not re.search(rf"(?<![\w.]){re.escape(text)}(?![\w.])", out, re.IGNORECASE), (key, text)


@pytest.mark.parametrize("unanswered", [None, ...])
def test_an_unanswered_exercise_says_so_and_fails_nothing(unanswered, capsys):
    assert check("04.1", unanswered) is None
    assert capsys.readouterr().out.startswith("04.1: not answered yet.")


def test_spelling_does_not_matter_but_the_value_does():
    assert is_right("06.1", "  x-request-id ") and is_right("00.3", "AUTHORIZATION")
    assert is_right("04.4", ["reject_on_worker_lost", "acks_late"])  # a list or a set: the same two names
    assert is_right("03.2", 0.75) and is_right("03.2", 3 / 4) and not is_right("03.2", "0.75")
    assert not is_right("05.3", True)  # a bool is not a status code


def test_a_path_rule_by_substring_is_not_the_curriculum_rule():
    """02.2: every candidate path contains admin or login; the anchored patterns flag only some of them."""
    substring = {p for p in exercises.CURRICULUM_PATH_CANDIDATES if "admin" in p or "login" in p}
    assert substring == set(exercises.CURRICULUM_PATH_CANDIDATES) and not is_right("02.2", substring)


def test_an_unknown_exercise_is_a_one_line_error():
    with pytest.raises(KeyError, match="no exercise '09.9'"):
        check("09.9", 1)


def test_computed_answers_follow_the_backend(settings):
    """Answers are read from the live backend when checked: change a setting and the right answer changes."""
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    assert is_right("05.2", lifetime.total_seconds())
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": lifetime * 2}
    assert not is_right("05.2", lifetime.total_seconds()) and is_right("05.2", 2 * lifetime.total_seconds())


@pytest.mark.parametrize(
    "stem",
    [
        "00-tour",
        "01-schema-design",
        "02-suspicious-ip-replay",
        "03-cache-performance",
        "04-background-tasks",
        "05-auth-and-rate-limits",
        "06-logs-and-metrics",
    ],
)
def test_each_course_notebook_has_2_to_5_checked_exercises_and_a_solution_for_each(stem):
    keys = [e.key for e in exercises_of(stem)]
    assert 2 <= len(keys) <= 5
    learner = "\n".join(c.source for c in nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4).cells)
    solution = "\n".join(
        c.source for c in nbformat.read(NOTEBOOKS / "solutions" / f"{stem}-solutions.ipynb", as_version=4).cells
    )
    for key in keys:
        assert f'check("{key}", answer)' in learner and f'assert check("{key}", answer)' in solution
    assert not re.search(r"^answer = (?!\.\.\.$)", learner, re.MULTILINE)  # the learner's cells stay unanswered
