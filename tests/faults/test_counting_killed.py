"""The API's counting strategy (``delta``) against real processes killed mid-way, and a vote storm through gunicorn.

1. A fold (the ``fold_vote_deltas`` task's function, in a ``manage.py shell`` process) is stopped by the fault
   injection point ``fold-before-commit`` (nexus_backend/core/faults.py): deltas deleted and counters updated, not
   committed. Votes keep arriving meanwhile and reads stay exact; then the process is SIGKILLed. PostgreSQL rolls
   its transaction back, so the next fold folds every vote exactly once.
2. A gunicorn worker is stopped by ``vote-before-commit`` (the vote row and its delta inserted, not committed) and
   SIGKILLed: the vote is nowhere (neither row nor count), other voters are served meanwhile, and the same voter
   can vote again.
3. A storm of voters through gunicorn, each reading the results right after its ``201``: every read includes every
   vote answered before it was sent (its own among them), and the counts end equal to ``COUNT(*)``.

After each: the strategy's counts equal ``COUNT(*)`` per option (``bench.counts_exact``)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model

from nexus_backend.polls import counting, services
from nexus_backend.polls.models import Vote
from nexus_lab.benchmark import server_env
from nexus_lab.polls import bench
from tests.conftest import bearer

from .harness import ROOT, Gunicorn, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def _crowd(n: int, prefix: str) -> list:
    User = get_user_model()
    return User.objects.bulk_create(
        User(username=f"{prefix}{i:04d}", email=f"{prefix}{i:04d}@example.com", password="!") for i in range(n)
    )


def _exact(poll_id: int) -> None:
    assert bench.counts_exact(strategy="delta", poll_ids=[poll_id]) == []
    assert counting.counters_drift(poll_ids=[poll_id]) == []


def test_a_fold_killed_before_its_commit_loses_and_doubles_nothing(poll, tmp_path):
    voters = _crowd(50, "fold")
    option = poll.options.first()
    for u in voters[:30]:
        services.vote_cast(poll_id=poll.pk, option_id=option.pk, user=u)
    pidfile = tmp_path / "paused.pid"
    env = server_env(NEXUS_FAULT_PAUSE_AT="fold-before-commit", NEXUS_FAULT_PIDFILE=str(pidfile))
    code = "from nexus_backend.polls.tasks import fold_vote_deltas; fold_vote_deltas()"
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), 60, "the fold to pause before commit"))
        assert pid == proc.pid
        # The fold holds its deltas and the option's row: voters are not blocked, readers see every vote once.
        race = bench.race_votes(poll_id=poll.pk, ballots=[(u.pk, option.pk) for u in voters[30:]], workers=8)
        assert race.outcomes == {"created": 20}
        _exact(poll.pk)
        assert counting.deltas_fold() is None  # the paused fold holds the fold lock
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    # Once PostgreSQL has noticed the dead client, its transaction is rolled back: all 50 are pending again.
    folded = wait_for(lambda: counting.deltas_fold(), 60, "the killed fold's lock to be released")
    assert folded == 50
    option.refresh_from_db()
    assert option.vote_count == 50 and counting.deltas_pending() == 0
    _exact(poll.pk)


class _Http:
    """JSON over one keep-alive connection to 127.0.0.1:``port`` (one per thread)."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = token
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else {})

    def close(self) -> None:
        self.conn.close()


def _web(tmp_path, **extra: str) -> Gunicorn:
    env = server_env(
        NEXUS_RATE_VOTE_IP="100000/min",  # every voter comes from 127.0.0.1
        NEXUS_REQUEST_LOGGING="off",
        **extra,
    )
    web = Gunicorn(root=ROOT, workers=2, env=env)
    web.start()
    web.wait_healthy()
    return web


def test_a_web_worker_killed_mid_vote_loses_and_doubles_nothing(poll, tmp_path):
    voters = _crowd(41, "web")
    option = poll.options.first()
    pidfile = tmp_path / "paused.pid"
    web = _web(tmp_path, NEXUS_FAULT_PAUSE_AT="vote-before-commit", NEXUS_FAULT_PIDFILE=str(pidfile))
    victim = voters[0]
    outcome: list = []

    def doomed_vote():
        client = _Http(web.port)
        try:
            outcome.append(client.call("POST", f"/api/polls/{poll.pk}/vote/", bearer(victim), {"option": option.pk}))
        except (OSError, http.client.HTTPException) as exc:  # the worker died under the request
            outcome.append(type(exc).__name__)
        finally:
            client.close()

    try:
        doomed = threading.Thread(target=doomed_vote)
        doomed.start()
        pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), 60, "a vote to pause before commit"))
        # Meanwhile the other worker serves the other voters (the paused vote holds no lock they need).
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda u: _vote(web.port, poll.pk, option.pk, u), voters[1:]))
        assert statuses == [201] * 40
        os.kill(pid, signal.SIGKILL)
        doomed.join(60)
        assert outcome and isinstance(outcome[0], str), outcome  # no answer: the client never got a 201
        wait_for(lambda: not Vote.objects.filter(poll=poll, user=victim).exists(), 30, "no trace of the killed vote")
        assert sum(counting.counted(poll_ids=[poll.pk]).values()) == Vote.objects.filter(poll=poll).count() == 40
        _exact(poll.pk)
        assert _vote(web.port, poll.pk, option.pk, victim) == 201  # nothing half-done blocks the voter
        assert Vote.objects.filter(poll=poll).count() == 41
        counting.deltas_fold()
        _exact(poll.pk)
    finally:
        web.stop()


def _vote(port: int, poll_id: int, option_id: int, user) -> int:
    client = _Http(port)
    try:
        return client.call("POST", f"/api/polls/{poll_id}/vote/", bearer(user), {"option": option_id})[0]
    finally:
        client.close()


def test_a_vote_storm_through_gunicorn_every_voter_reads_their_own_vote(poll, tmp_path):
    """16 threads, 400 voters, two thirds on one option, folds running as the beat would: each voter's next read
    includes at least every vote answered before that read was sent (its own vote among them)."""
    voters = _crowd(400, "storm")
    hot, *others = list(poll.options.values_list("pk", flat=True))
    choice = {u.pk: hot if i % 3 else others[i % len(others)] for i, u in enumerate(voters)}
    tokens = {u.pk: bearer(u) for u in voters}
    web = _web(tmp_path)
    answered = 0
    lock = threading.Lock()
    misses: list = []

    def voter(user) -> int:
        nonlocal answered
        client = _Http(web.port)
        try:
            status, _ = client.call("POST", f"/api/polls/{poll.pk}/vote/", tokens[user.pk], {"option": choice[user.pk]})
            if status != 201:
                return status
            with lock:
                answered += 1
                at_least = answered  # every vote answered so far, this one included
            status, results = client.call("GET", f"/api/polls/{poll.pk}/results/")
            if status != 200 or results["total_votes"] < at_least:
                misses.append((user.pk, status, results.get("total_votes"), at_least))
            return 201
        finally:
            client.close()

    try:
        with bench.folding(interval=0.2) as folded, ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(voter, voters))
    finally:
        web.stop()
    assert statuses == [201] * 400
    assert misses == [], f"{len(misses)} reads missed votes answered before them, e.g. {misses[:3]}"
    assert sum(folded) > 0  # reads crossed folds
    assert Vote.objects.filter(poll=poll).count() == 400
    _exact(poll.pk)
