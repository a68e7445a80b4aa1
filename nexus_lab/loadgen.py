"""The simulated clients of ``manage.py load``, as locust users (locust used as a library).

Run by the command as a subprocess, never imported by Django: locust monkey-patches the standard library with
gevent when it is imported, which must not happen inside a process that holds database connections.

    python -m nexus_lab.loadgen PLAN.json RESULT.json

The plan (written by ``nexus_lab.load``) names the server, the duration and, per simulated client, its
IP address (sent as ``X-Forwarded-For``; the server trusts one proxy), its user agent and its credentials. Each
client is one locust user; every request is recorded by a ``request`` event listener under the client's class
(``normal``, ``credential_stuffing``, ``vote_stuffing``, ``scanner``) and address. The result file holds, per
class, the latencies (ms) and status counts, and per address its status counts: the command turns them into
the table. The run stops by itself after ``duration`` seconds; every request goes to the plan's loopback host.
"""

from __future__ import annotations

import itertools
import json
import random
import sys
import time
from collections import Counter, defaultdict
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from locust import User

BLOCKED_CODE = b'"ip_blocked"'  # the block list's 403 body (tracking.middleware.BLOCKED_BODY)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Recorder:
    """Every request's class, address, status and latency, from locust's ``request`` event."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.by_ip: dict[str, Counter] = defaultdict(Counter)
        self.by_kind: dict[str, Counter] = defaultdict(Counter)
        self.by_name: dict[str, Counter] = defaultdict(Counter)
        self.name_latencies: dict[str, list[float]] = defaultdict(list)
        self.timeline: list[tuple[float, float]] = []  # normal users: (epoch seconds sent, latency ms)

    def on_request(
        self, request_type, name, response_time, response, context, exception, start_time=None, **kwargs
    ) -> None:
        cls, ip, kind = context.get("cls", "?"), context.get("ip", "?"), context.get("kind", "?")
        status = getattr(response, "status_code", 0) or 0
        label = str(status) if status else f"error:{type(exception).__name__ if exception else 'none'}"
        if status == 403 and BLOCKED_CODE in (getattr(response, "content", b"") or b""):
            label = "403-blocked"
        self.latencies[cls].append(round(float(response_time), 3))
        self.statuses[cls][label] += 1
        self.by_ip[ip][label] += 1
        self.by_kind[f"{cls}/{kind}"][label] += 1
        if cls == "normal":
            self.by_name[f"{request_type} {name}"][label] += 1
            self.name_latencies[f"{request_type} {name}"].append(round(float(response_time), 3))
            self.timeline.append((round(start_time or time.time(), 3), round(float(response_time), 3)))

    def as_dict(self) -> dict:
        return {
            "latencies_ms": dict(self.latencies),
            "statuses": {k: dict(v) for k, v in self.statuses.items()},
            "by_ip": {k: dict(v) for k, v in self.by_ip.items()},
            "by_kind": {k: dict(v) for k, v in self.by_kind.items()},
            "normal_by_request": {k: dict(v) for k, v in self.by_name.items()},
            "normal_latencies_by_request_ms": dict(self.name_latencies),
            "normal_timeline": self.timeline,
        }


def build_user_classes(plan: dict) -> list[type[User]]:
    """One locust user class per kind of client in the plan, each spawned exactly once per identity."""
    from locust import FastHttpUser, between, constant_throughput, task

    polls = plan["polls"]  # [{"id": .., "options": [..]}]
    poll_ids = [p["id"] for p in polls]
    rng = random.Random(plan.get("seed", 0))

    class Client(FastHttpUser):
        abstract = True
        cls = "?"
        kind = "?"
        identities: list[dict] = []

        def on_start(self) -> None:
            self.me = self.identities.pop()
            self.ip = self.me["ip"]
            self.headers = {"X-Forwarded-For": self.ip, "User-Agent": self.me["user_agent"]}
            if self.me.get("referer"):
                self.headers["Referer"] = self.me["referer"]
            self.rng = random.Random(f"{plan.get('seed', 0)}-{self.ip}-{self.kind}")

        def context(self) -> dict:
            return {"cls": self.cls, "ip": getattr(self, "ip", "?"), "kind": self.kind}

    classes: list[type[User]] = []

    normal_ids = plan["clients"].get("normal", [])
    if normal_ids:
        think = plan["think_seconds"]

        class Normal(Client):
            """A person: opens the list, logs in, reads polls and results, votes once on some polls."""

            cls, kind = "normal", "person"
            identities = list(normal_ids)
            fixed_count = len(normal_ids)
            wait_time = between(*think)

            def on_start(self) -> None:
                super().on_start()
                self.voted: set[int] = set()
                self.client.get("/api/polls/", headers=self.headers, name="/api/polls/")
                response = self.client.post(
                    "/api/auth/token/",
                    json={"username": self.me["username"], "password": self.me["password"]},
                    headers=self.headers,
                )
                if response.status_code == 200:
                    self.headers["Authorization"] = f"Bearer {response.json()['access']}"

            @task(3)
            def browse(self) -> None:
                page = self.rng.choice((1, 2))
                self.client.get(f"/api/polls/?page={page}&page_size=10", headers=self.headers, name="/api/polls/")

            @task(3)
            def read_poll(self) -> None:
                poll = self.rng.choice(poll_ids)
                self.client.get(f"/api/polls/{poll}/", headers=self.headers, name="/api/polls/{id}/")

            @task(3)
            def read_results(self) -> None:
                poll = self.rng.choice(poll_ids)
                self.client.get(f"/api/polls/{poll}/results/", headers=self.headers, name="/api/polls/{id}/results/")

            @task(2)
            def vote(self) -> None:
                left = [p for p in polls if p["id"] not in self.voted]
                if not left or "Authorization" not in self.headers:
                    self.read_results()
                    return
                poll = self.rng.choice(left)
                self.voted.add(poll["id"])  # once per poll, whatever the answer
                self.client.get(f"/api/polls/{poll['id']}/", headers=self.headers, name="/api/polls/{id}/")
                self.wait()  # reads the question and the options, then chooses
                self.client.post(
                    f"/api/polls/{poll['id']}/vote/",
                    json={"option": self.rng.choice(poll["options"])},
                    headers=self.headers,
                    name="/api/polls/{id}/vote/",
                )

        classes.append(Normal)

    stuffers = plan["clients"].get("credential_stuffing", [])
    if stuffers:
        usernames = plan["known_usernames"]

        class CredentialStuffer(Client):
            """A list of leaked usernames tried with wrong passwords, as fast as its rate allows."""

            cls, kind = "credential_stuffing", "stuffer"
            identities = list(stuffers)
            fixed_count = len(stuffers)
            wait_time = constant_throughput(plan["rates"]["credential_stuffing"])

            @task
            def try_password(self) -> None:
                guess = "".join(self.rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=12))
                self.client.post(
                    "/api/auth/token/",
                    json={"username": self.rng.choice(usernames), "password": guess},
                    headers=self.headers,
                )

        classes.append(CredentialStuffer)

    voting = plan["clients"].get("vote_stuffing", {})
    if voting.get("farm"):

        class VoteFarm(Client):
            """One address, many accounts: every account votes on every poll, then starts over."""

            cls, kind = "vote_stuffing", "one_ip_many_accounts"
            identities = list(voting["farm"])
            fixed_count = len(voting["farm"])
            wait_time = constant_throughput(plan["rates"]["vote_farm"])

            def on_start(self) -> None:
                super().on_start()
                self.pairs = itertools.cycle([(t, p) for p in polls for t in self.me["tokens"]])

            @task
            def vote(self) -> None:
                token, poll = next(self.pairs)
                self.client.post(
                    f"/api/polls/{poll['id']}/vote/",
                    json={"option": poll["options"][0]},
                    headers={**self.headers, "Authorization": f"Bearer {token}"},
                    name="/api/polls/{id}/vote/",
                )

        classes.append(VoteFarm)

    if voting.get("repeat"):

        class RepeatVoter(Client):
            """One account voting again and again, poll after poll."""

            cls, kind = "vote_stuffing", "one_account_repeating"
            identities = list(voting["repeat"])
            fixed_count = len(voting["repeat"])
            wait_time = constant_throughput(plan["rates"]["vote_repeat"])

            def on_start(self) -> None:
                super().on_start()
                self.polls = itertools.cycle(polls)

            @task
            def vote(self) -> None:
                poll = next(self.polls)
                self.client.post(
                    f"/api/polls/{poll['id']}/vote/",
                    json={"option": poll["options"][0]},
                    headers={**self.headers, "Authorization": f"Bearer {self.me['tokens'][0]}"},
                    name="/api/polls/{id}/vote/",
                )

        classes.append(RepeatVoter)

    if voting.get("ring"):
        target = polls[0]

        class VoteRing(Client):
            """Many addresses, one account each, one script: the same vote on the same poll, again and again."""

            cls, kind = "vote_stuffing", "rotating_ips"
            identities = list(voting["ring"])
            fixed_count = len(voting["ring"])
            wait_time = constant_throughput(plan["rates"]["vote_ring"])

            @task
            def vote(self) -> None:
                self.client.post(
                    f"/api/polls/{target['id']}/vote/",
                    json={"option": target["options"][-1]},
                    headers={**self.headers, "Authorization": f"Bearer {self.me['tokens'][0]}"},
                    name="/api/polls/{id}/vote/",
                )

        classes.append(VoteRing)

    scanners = plan["clients"].get("scanner", [])
    if scanners:
        paths = plan["scanner_paths"]

        class Scanner(Client):
            """Probes for software this site does not run and for secrets, like a vulnerability scanner."""

            cls, kind = "scanner", "scanner"
            identities = list(scanners)
            fixed_count = len(scanners)
            wait_time = constant_throughput(plan["rates"]["scanner"])

            def on_start(self) -> None:
                super().on_start()
                start = rng.randrange(len(paths))
                self.paths = itertools.cycle(paths[start:] + paths[:start])

            @task
            def probe(self) -> None:
                path = next(self.paths)
                self.client.get(path, headers=self.headers, name=path, allow_redirects=False)

        classes.append(Scanner)
    return classes


def run(plan: dict) -> dict:
    """Spawn every client of the plan, let them run ``duration`` seconds, stop them; return what they saw."""
    host = urlsplit(plan["host"]).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"loadgen: refusing to load {plan['host']}: only a server on this machine (loopback)")

    import gevent
    from locust.env import Environment

    classes = build_user_classes(plan)
    if not classes:
        raise SystemExit("loadgen: the plan has no client")
    recorder = Recorder()
    # stop_timeout: at the end each client finishes the request it has in flight (and it is counted), so what the
    # clients saw and what the server logged agree; a client that is only waiting stops at once.
    env = Environment(
        user_classes=classes, host=plan["host"], catch_exceptions=True, stop_timeout=plan.get("stop_timeout", 60)
    )
    env.events.request.add_listener(recorder.on_request)
    runner = env.create_local_runner()
    users = sum(c.fixed_count for c in classes)
    started = time.time()
    runner.start(users, spawn_rate=plan.get("spawn_rate", 10))
    gevent.spawn_later(plan["duration"], runner.quit)
    runner.greenlet.join()
    ended = time.time()
    exceptions = [
        {"count": e["count"], "msg": str(e["msg"])[:300], "traceback": str(e["traceback"])[-600:]}
        for e in runner.exceptions.values()
    ]
    return {"started": started, "ended": ended, "users": users, "exceptions": exceptions, **recorder.as_dict()}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m nexus_lab.loadgen PLAN.json RESULT.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        plan = json.load(fh)
    result = run(plan)
    with open(argv[2], "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
