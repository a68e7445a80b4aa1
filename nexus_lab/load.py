"""Load with abuse (``manage.py load``): normal users alone, then normal users with attackers, against a real
gunicorn with request logging on, the real rate limits, the block list and the suspicious-IP detector.

The run, in one command (every figure it prints comes from this one run):

1. **Setup**: 20 polls of its own, accounts for the normal users of each phase and for the vote stuffers (all
   named ``nexusload_…``), and leftovers of an earlier run removed (its blocks, rate-limit windows, findings).
2. **Servers**: gunicorn (``nexus_lab.benchmark.Gunicorn``) with ``NEXUS_TRUSTED_PROXIES=1`` and
   ``NEXUS_REQUEST_LOGGING=on``, and ``flush_request_logs --loop`` moving the request log into PostgreSQL.
3. **Phase "baseline"**: the normal users for ``duration`` seconds. **Phase "attack"**: the same number of normal
   users (fresh accounts, same addresses, same behaviour) plus the attackers, for the same time. The clients are
   locust users in subprocesses (:mod:`nexus_lab.loadgen`): normal users in one process, attackers in
   another, so the attackers' client-side work does not slow the normal users' clocks. Each client sends its
   own ``X-Forwarded-For``: normal users come from 198.51.100.0/24, attackers from 203.0.113.0/24 (documentation
   ranges: no packet ever leaves the machine, every request goes to 127.0.0.1).
4. **Detection** during both phases, as the hourly task but every ``detect_every`` seconds over the phase so far
   (``detection.services.detect_window``; with ``auto_block`` its blocks reach the web workers through the block
   list), and once more over each whole phase after the last request log is flushed.
5. **Figures** per phase and client class: requests, status counts, error rate, p50/p95 latency, 429s (rate
   limits), 403s from the block list, addresses flagged (``SuspiciousIP``) and blocked (``BlockedIP``); then the
   verdicts: normal users saw no errors, the p95 ratio attack/baseline, every attacker class caught.
6. **Cleanup**: the run's accounts, polls, request logs, findings, blocks and rate-limit windows are removed
   (``keep_data`` keeps them to look at; the next run removes them first).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import threading
import typing
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings

from nexus_lab.benchmark import (
    HOST,
    Flusher,
    Gunicorn,
    TextTable,
    fmt,
    git_commit,
    percentile,
    server_env,
)

PREFIX = "nexusload_"  # every account (and through its owner every poll) the load test makes
CLASSES = ("normal", "credential_stuffing", "vote_stuffing", "scanner")
ATTACKERS = CLASSES[1:]
PHASES = ("baseline", "attack")
POLLS = 20
NORMAL_NET = "198.51.100."  # TEST-NET-2 (RFC 5737): the normal users
ATTACK_NET = "203.0.113."  # TEST-NET-3: the attackers
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
)
FRONTEND = "http://localhost:5173/"
SCANNER_PATHS = (
    "/wp-login.php",
    "/.env",
    "/phpmyadmin/",
    "/wp-admin/",
    "/.git/config",
    "/xmlrpc.php",
    "/admin/",
    "/backup.sql",
    "/config.php",
    "/cgi-bin/test.cgi",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/actuator/health",
    "/.aws/credentials",
    "/api/v1/users/",
    "/server-status",
    "/login/",
)
# Requests per second of each attacker address (the farm is one address with many accounts).
RATES = {"credential_stuffing": 3.0, "vote_farm": 5.0, "vote_repeat": 2.0, "vote_ring": 0.5, "scanner": 4.0}
# A stuffing tool keeps many attempts in flight per address: more than the login limit (5/min), so that some
# are refused at once (429) while the allowed ones are still being hashed.
STUFFER_CONCURRENCY = 8
MAX_STUFFER_IPS = 5
ATTACKER_COUNTS = {"farm_accounts": 40, "ring": 10}


class LoadError(RuntimeError):
    """The load test cannot run; ``str()`` says why in one line."""


@dataclass
class LoadConfig:
    duration: float = 120.0  # seconds per phase
    users: int = 30  # normal users per phase
    stuffer_ips: int = 3  # addresses of the credential stuffers
    think: tuple[float, float] = (1.0, 4.0)  # seconds between a normal user's actions
    # gunicorn sync workers, more than gunicorn's 2 x cores + 1: a login holds its worker for a whole password hash
    # (PBKDF2, 0.5-2 s of CPU here), and with few workers every other request queues behind the hashes.
    workers: int = 8
    attack_scale: float = 1.0  # multiplies every attacker's request rate
    detect_every: float = 30.0  # seconds between detector runs during a phase (0: only after the phases)
    auto_block: bool = True  # flagged addresses of `block: true` rules are blocked (the block list answers 403)
    seed: int = 0
    keep_data: bool = False

    def validate(self) -> None:
        if not 5 <= self.duration <= 3600:
            raise LoadError("--duration must be between 5 and 3600 seconds")
        if not 1 <= self.users <= 250:
            raise LoadError("--users must be between 1 and 250 (one address each in 198.51.100.0/24)")
        if not 0 < self.think[0] <= self.think[1] <= 60:
            raise LoadError("--think must be MIN,MAX seconds with 0 < MIN <= MAX <= 60")
        if not 1 <= self.stuffer_ips <= MAX_STUFFER_IPS:
            raise LoadError(f"--stuffer-ips must be between 1 and {MAX_STUFFER_IPS}")
        if not 1 <= self.workers <= 16:
            raise LoadError("--workers must be between 1 and 16")
        if not 0 < self.attack_scale <= 20:
            raise LoadError("--attack-scale must be above 0 and at most 20")
        if self.detect_every and not 2 <= self.detect_every <= self.duration:
            raise LoadError("--detect-every must be 0 (after the phases only) or between 2 s and the duration")


# --------------------------------------------------------------------------- the clients and their data


@dataclass
class Cast:
    """Who takes part: addresses, accounts and what each client class is given (the loadgen plan's clients)."""

    polls: list[dict]
    normal: dict[str, list[dict]]  # phase -> identities
    attackers: dict
    known_usernames: list[str]

    def addresses(self) -> dict[str, str]:
        """address -> client class (normal users keep their address in both phases)."""
        out = {i["ip"]: "normal" for ids in self.normal.values() for i in ids}
        for cls in ("credential_stuffing", "scanner"):
            out.update({ident["ip"]: cls for ident in self.attackers[cls]})
        for kind in ("farm", "repeat", "ring"):
            for ident in self.attackers["vote_stuffing"][kind]:
                out[ident["ip"]] = "vote_stuffing"
        return out


def planned_addresses(users: int = 250, stuffer_ips: int = MAX_STUFFER_IPS) -> list[str]:
    """Every address a run uses (by default the most any run uses: what cleanup looks for)."""
    c = stuffer_ips
    ring = ATTACKER_COUNTS["ring"]
    return (
        [f"{NORMAL_NET}{i + 1}" for i in range(users)]
        + [f"{ATTACK_NET}{10 + i}" for i in range(c)]
        + [f"{ATTACK_NET}20", f"{ATTACK_NET}21"]
        + [f"{ATTACK_NET}{30 + i}" for i in range(ring)]
        + [f"{ATTACK_NET}50", f"{ATTACK_NET}51"]
    )


def cleanup(*, addresses: list[str] | None = None, echo: Callable[[str], None] = print) -> dict:
    """Remove what a run leaves: its accounts (their polls and votes go with them), the findings and blocks of
    its addresses, their rate-limit windows, and (for ``addresses``) their request logs."""
    from django.contrib.auth import get_user_model
    from django.core.cache import cache

    from nexus_backend.polls.models import Poll
    from nexus_backend.tracking.client_ip import address_group
    from nexus_backend.tracking.models import BlockedIP, RequestLog, SuspiciousIP
    from nexus_backend.tracking.throttles import LoginAccountThrottle

    addresses = addresses if addresses is not None else planned_addresses()
    users = get_user_model().objects.filter(username__startswith=PREFIX)
    user_ids, usernames = [], []
    for pk, username in users.values_list("pk", "username"):
        user_ids.append(pk)
        usernames.append(username)
    Poll.objects.filter(owner__in=user_ids).delete()
    deleted_users, _ = users.delete()
    blocks, _ = BlockedIP.objects.filter(ip_address__in=addresses).delete()  # signals: every process reloads
    findings, _ = SuspiciousIP.objects.filter(ip_address__in=addresses).delete()
    logs, _ = RequestLog.objects.filter(ip_address__in=addresses).delete()
    keys = [
        f"throttle_{scope}_{address_group(ip)}" for scope in ("login_ip", "register_ip", "vote_ip") for ip in addresses
    ]
    keys += [f"throttle_vote_user_user-{pk}" for pk in user_ids]
    keys += [LoginAccountThrottle.key_for(name) for name in usernames]
    cache.delete_many(keys)
    return {"users": len(user_ids), "blocks": blocks, "findings": findings, "request_logs": logs}


def make_cast(config: LoadConfig) -> Cast:
    """Polls, accounts and addresses for one run (fresh normal accounts per phase, same addresses)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from nexus_backend.polls.services import poll_create

    User = get_user_model()
    password = secrets.token_urlsafe(12)
    hashed = make_password(password)  # one hash for every normal account: hashing per account would take minutes
    with transaction.atomic():
        owner = User.objects.create(username=f"{PREFIX}owner", email=f"{PREFIX}owner@example.invalid")
        owner.set_unusable_password()
        owner.save(update_fields=["password"])
        polls = []
        for i in range(POLLS):
            poll = poll_create(
                owner=owner,
                question=f"Load test poll {i + 1}: which one?",
                options=["Alpha", "Beta", "Gamma", "Delta"],
            )
            polls.append({"id": poll.pk, "options": list(poll.options.order_by("pk").values_list("pk", flat=True))})

        normal: dict[str, list[dict]] = {}
        new_users = []
        for p, phase in enumerate(PHASES, start=1):
            normal[phase] = []
            for i in range(config.users):
                name = f"{PREFIX}p{p}_{i + 1:03d}"
                new_users.append(User(username=name, email=f"{name}@example.invalid", password=hashed))
                normal[phase].append(
                    {
                        "ip": f"{NORMAL_NET}{i + 1}",
                        "username": name,
                        "password": password,
                        "user_agent": BROWSERS[i % len(BROWSERS)],
                        "referer": FRONTEND,
                    }
                )
        bots = {
            "farm": [f"{PREFIX}farm_{i + 1:02d}" for i in range(ATTACKER_COUNTS["farm_accounts"])],
            "repeat": [f"{PREFIX}repeat_01"],
            "ring": [f"{PREFIX}ring_{i + 1:02d}" for i in range(ATTACKER_COUNTS["ring"])],
        }
        for names in bots.values():
            new_users += [User(username=n, email=f"{n}@example.invalid", password="!") for n in names]
        User.objects.bulk_create(new_users)

    script_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
    attackers = {
        "credential_stuffing": [
            {"ip": f"{ATTACK_NET}{10 + i}", "user_agent": "python-requests/2.32.3"}
            for i in range(config.stuffer_ips)
            for _ in range(STUFFER_CONCURRENCY)
        ],
        "vote_stuffing": {
            "farm": [{"ip": f"{ATTACK_NET}20", "user_agent": script_agent, "accounts": bots["farm"]}],
            "repeat": [{"ip": f"{ATTACK_NET}21", "user_agent": script_agent, "accounts": bots["repeat"]}],
            "ring": [
                {"ip": f"{ATTACK_NET}{30 + i}", "user_agent": script_agent, "accounts": [name]}
                for i, name in enumerate(bots["ring"])
            ],
        },
        "scanner": [
            {"ip": f"{ATTACK_NET}50", "user_agent": "sqlmap/1.8.4#stable (https://sqlmap.org)"},
            {"ip": f"{ATTACK_NET}51", "user_agent": BROWSERS[0]},  # a browser's agent: caught by what it asks for
        ],
    }
    known = [i["username"] for i in normal["attack"]] + ["admin", "root", "test", "user", "demo"]
    cast = Cast(polls=polls, normal=normal, attackers=attackers, known_usernames=known)
    return cast


def mint_tokens(cast: Cast) -> None:
    """Access tokens for the vote stuffers' accounts (accounts registered and logged in before the attack), minted
    just before the attack phase so that they are valid through it."""
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    users = {u.username: u for u in get_user_model().objects.filter(username__startswith=f"{PREFIX}")}
    for idents in cast.attackers["vote_stuffing"].values():
        for ident in idents:
            ident["tokens"] = [str(AccessToken.for_user(users[name])) for name in ident["accounts"]]


def loadgen_plan(cast: Cast, config: LoadConfig, *, port: int, phase: str, attackers: bool) -> dict:
    """What one loadgen process runs: the normal users of ``phase``, or the attackers."""
    scale = config.attack_scale
    clients: dict = (
        {
            "credential_stuffing": cast.attackers["credential_stuffing"],
            "vote_stuffing": cast.attackers["vote_stuffing"],
            "scanner": cast.attackers["scanner"],
        }
        if attackers
        else {"normal": cast.normal[phase]}
    )
    return {
        "host": f"http://{HOST}:{port}",
        "duration": config.duration,
        "seed": config.seed,
        "polls": cast.polls,
        "think_seconds": list(config.think),
        "known_usernames": cast.known_usernames,
        "scanner_paths": list(SCANNER_PATHS),
        "rates": {k: v * scale / (STUFFER_CONCURRENCY if k == "credential_stuffing" else 1) for k, v in RATES.items()},
        # Attackers start at once; people arrive over the first quarter of the phase (at least 5 s), not in a storm.
        "stop_timeout": 60,
        "spawn_rate": 100 if attackers else config.users / max(5.0, config.duration / 4),
        "clients": clients,
    }


# --------------------------------------------------------------------------- running


class LoadgenProcess:
    """``python -m nexus_lab.loadgen PLAN RESULT`` in its own session; always stopped."""

    def __init__(self, plan: dict, folder: Path, name: str, timeout: float):
        self.folder, self.name, self.timeout = folder, name, timeout
        self.plan_path = folder / f"{name}-plan.json"
        self.result_path = folder / f"{name}-result.json"
        self.log_path = folder / f"{name}.log"
        fd = os.open(self.plan_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds passwords and tokens
        with os.fdopen(fd, "w") as fh:
            json.dump(plan, fh)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nexus_lab.loadgen", str(self.plan_path), str(self.result_path)],
                cwd=settings.NEXUS_PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait(self) -> dict:
        from nexus_lab.benchmark import terminate

        assert self.proc is not None
        try:
            self.proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            terminate(self.proc, timeout=10)
            raise LoadError(
                f"the {self.name} clients did not stop within {self.timeout:.0f} s:\n{self.log_tail()}"
            ) from None
        if self.proc.returncode != 0 or not self.result_path.exists():
            raise LoadError(f"the {self.name} clients failed (exit {self.proc.returncode}):\n{self.log_tail()}")
        return json.loads(self.result_path.read_text())

    def stop(self) -> None:
        from nexus_lab.benchmark import terminate

        if self.proc is not None and self.proc.poll() is None:
            terminate(self.proc, timeout=10)

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


class DetectorLoop(threading.Thread):
    """The detector every ``every`` seconds over ``[start, now)``: the hourly task, compressed to a phase."""

    def __init__(self, *, start: datetime, every: float, auto_block: bool):
        super().__init__(name="load-detector", daemon=True)
        self.start_at, self.every, self.auto_block = start, every, auto_block
        self.stopping = threading.Event()
        self.runs: list[dict] = []
        self.errors: list[str] = []

    def run(self) -> None:
        from django.db import connection

        from nexus_backend.tracking.detection.services import detect_window

        try:
            while not self.stopping.wait(self.every):
                try:
                    now = datetime.now(UTC)
                    result = detect_window(start=self.start_at, end=now, auto_block=self.auto_block)
                    self.runs.append({"at": now.isoformat(timespec="seconds"), **result.as_dict()})
                except Exception as exc:  # noqa: BLE001 - reported in the results, the load goes on
                    self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=120)


def run_phase(name: str, plans: dict[str, dict], config: LoadConfig, folder: Path, echo: Callable[[str], None]) -> dict:
    """Start one loadgen process per plan at once, with the detector loop; wait for all of them."""
    start = datetime.now(UTC)
    procs = {
        key: LoadgenProcess(plan, folder, f"{name}-{key}", timeout=config.duration + 120) for key, plan in plans.items()
    }
    loop = DetectorLoop(start=start, every=config.detect_every, auto_block=config.auto_block)
    results: dict[str, dict] = {}
    try:
        for proc in procs.values():
            proc.start()
        if config.detect_every:
            loop.start()
        echo(f"phase {name}: {', '.join(procs)} clients for {config.duration:g} s")
        for key, proc in procs.items():
            results[key] = proc.wait()
    finally:
        for proc in procs.values():
            proc.stop()
        if loop.is_alive():
            loop.stop()
    end = datetime.now(UTC)
    return {"start": start, "end": end, "clients": results, "detector_runs": loop.runs, "detector_errors": loop.errors}


def run(config: LoadConfig, *, echo: Callable[[str], None] = print) -> dict:
    """The whole load test (see the module doc); returns the results (``table(result)`` prints them)."""
    import importlib.util

    from django.db import connections

    config.validate()
    if importlib.util.find_spec("locust") is None:
        raise LoadError("locust is not installed in this environment: .venv/bin/pip install -e '.[dev]'")

    root = Path(settings.NEXUS_PROJECT_ROOT)
    started = datetime.now(UTC)
    addresses = planned_addresses(config.users, config.stuffer_ips)
    left = cleanup(addresses=planned_addresses())
    if any(left.values()):
        echo(f"removed what an earlier run left: {left}")
    cast = make_cast(config)
    echo(
        f"setup: {POLLS} polls, {config.users} normal users per phase (198.51.100.x), attackers from 203.0.113.x; "
        f"gunicorn {config.workers} sync workers, NEXUS_TRUSTED_PROXIES=1, request logging on"
    )
    env = server_env(NEXUS_TRUSTED_PROXIES="1", NEXUS_REQUEST_LOGGING="on")
    server = Gunicorn(root=root, workers=config.workers, env=env)
    flusher = Flusher(root=root, env=env)
    phases: dict[str, dict] = {}
    blocked_seen: dict[str, str] = {}
    rules_seen: dict[str, list[str]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="nexus-load-") as tmp:
            folder = Path(tmp)
            server.start()
            flusher.start()
            status, body = server.wait_healthy(timeout=180)  # 8 workers importing Django on a busy machine
            if status != 200:
                echo(f"warning: /health/ answers {status}: {body.get('checks', body)}")
            connections.close_all()
            phases["baseline"] = run_phase(
                "baseline",
                {"normal": loadgen_plan(cast, config, port=server.port, phase="baseline", attackers=False)},
                config,
                folder,
                echo,
            )
            mint_tokens(cast)
            connections.close_all()
            phases["attack"] = run_phase(
                "attack",
                {
                    "normal": loadgen_plan(cast, config, port=server.port, phase="attack", attackers=False),
                    "attackers": loadgen_plan(cast, config, port=server.port, phase="attack", attackers=True),
                },
                config,
                folder,
                echo,
            )
        server_clean = server.stop()
        flusher_clean = flusher.stop()  # a last pass over what gunicorn pushed while stopping
        final = _final_detection(phases, config, addresses)
        blocked_seen = final.pop("blocked")
        rules_seen = final.pop("rules")
    finally:
        server.stop()
        flusher.stop()
        if not config.keep_data:
            removed = cleanup(addresses=addresses)
            echo(f"cleanup: removed {removed}")
    return summarise(
        config=config,
        cast=cast,
        phases=phases,
        final=final,
        blocked=blocked_seen,
        rules=rules_seen,
        started=started,
        root=root,
        servers_clean={"gunicorn": server_clean, "flusher": flusher_clean},
    )


def _final_detection(phases: dict[str, dict], config: LoadConfig, addresses: list[str]) -> dict:
    """Flush the rest of the request log, run the detector over each whole phase, read the block list."""
    from django.db import close_old_connections

    from nexus_backend.tracking import flusher
    from nexus_backend.tracking.detection.services import detect_window
    from nexus_backend.tracking.models import BlockedIP, RequestLog, SuspiciousIP

    close_old_connections()
    flusher.flush()
    out: dict = {}
    for name, phase in phases.items():
        end = phase["end"] + timedelta(seconds=1)
        result = detect_window(start=phase["start"], end=end, auto_block=config.auto_block)
        flagged = set(result.flagged_ips)
        for run in phase["detector_runs"]:
            flagged.update(run["flagged_ips"])
        logged = RequestLog.objects.filter(timestamp__gte=phase["start"], timestamp__lt=end, ip_address__in=addresses)
        out[name] = {"flagged": sorted(flagged), "request_logs": logged.count(), "detector": result.as_dict()}
    out["rules"] = {
        str(ip): rules
        for ip, rules in SuspiciousIP.objects.filter(ip_address__in=addresses).values_list("ip_address", "rules")
    }
    out["blocked"] = {
        str(ip): reason
        for ip, reason in BlockedIP.objects.filter(ip_address__in=addresses).values_list("ip_address", "reason")
    }
    return out


# --------------------------------------------------------------------------- figures


def _class_row(cls: str, latencies: list[float], statuses: Counter, ips: list[str], flagged, blocked) -> dict:
    total = sum(statuses.values())
    by_family: Counter[str] = Counter()  # 2xx, 3xx, 4xx (429 and the block list's 403 included), 5xx, neterr
    for label, n in statuses.items():
        by_family[label[0] + "xx" if label[0].isdigit() else "neterr"] += n
    limited = statuses.get("429", 0)
    blocked_requests = statuses.get("403-blocked", 0)
    server_errors = by_family["5xx"] + by_family["neterr"]
    client_errors = by_family["4xx"]
    errors = server_errors + (client_errors if cls == "normal" else 0)
    lat = sorted(latencies)
    return {
        "requests": total,
        "statuses": dict(sorted(statuses.items())),
        "ok_2xx": by_family["2xx"],
        "redirects_3xx": by_family["3xx"],
        "client_4xx": client_errors,
        "server_5xx": by_family["5xx"],
        "network_errors": by_family["neterr"],
        "errors": errors,
        "error_rate": round(errors / total, 4) if total else None,
        "limited_429": limited,
        "blocked_403": blocked_requests,
        "p50_ms": round(percentile(lat, 0.50), 2) if lat else None,
        "p95_ms": round(percentile(lat, 0.95), 2) if lat else None,
        "addresses": len(ips),
        "flagged_addresses": sorted(ip for ip in ips if ip in flagged),
        "blocked_addresses": sorted(ip for ip in ips if ip in blocked),
    }


def summarise(*, config, cast, phases, final, blocked, rules, started, root, servers_clean) -> dict:
    owner = cast.addresses()
    rows: dict[str, dict[str, dict]] = {}
    kinds: dict[str, dict] = {}
    exceptions = []
    for name, phase in phases.items():
        flagged = set(final[name]["flagged"])
        rows[name] = {}
        merged_lat: dict[str, list[float]] = {}
        merged_status: dict[str, Counter] = {}
        ips_of: dict[str, set[str]] = {c: set() for c in CLASSES}
        for result in phase["clients"].values():
            for cls, lat in result["latencies_ms"].items():
                merged_lat.setdefault(cls, []).extend(lat)
            for cls, counts in result["statuses"].items():
                merged_status.setdefault(cls, Counter()).update(counts)
            for ip in result["by_ip"]:
                ips_of[owner.get(ip, "normal")].add(ip)
            if name == "attack":
                kinds.update(result["by_kind"])
            exceptions += result["exceptions"]
        for cls in CLASSES:
            if cls in merged_status:
                rows[name][cls] = _class_row(
                    cls, merged_lat.get(cls, []), merged_status[cls], sorted(ips_of[cls]), flagged, blocked
                )
    verdicts = _verdicts(rows)
    normal_requests = {
        name: phase["clients"]["normal"]["normal_by_request"] for name, phase in phases.items() if phase["clients"]
    }
    timeline = {}  # phase -> normal users' p95 per quarter of the phase: when their time goes
    for name, phase in phases.items():
        points = phase["clients"]["normal"]["normal_timeline"]
        t0, span = phase["start"].timestamp(), config.duration / 4
        quarters: list[list[float]] = [[], [], [], []]
        for sent, latency in points:
            quarters[min(3, max(0, int((sent - t0) // span)))].append(latency)
        timeline[name] = [round(percentile(sorted(q), 0.95), 1) if q else None for q in quarters]
    # request -> phase -> {p50, p95}: where the normal users' time goes
    normal_latency: dict[str, dict[str, dict[str, float]]] = {}
    for name, phase in phases.items():
        for request, lat in phase["clients"]["normal"]["normal_latencies_by_request_ms"].items():
            lat = sorted(lat)
            normal_latency.setdefault(request, {})[name] = {
                "requests": len(lat),
                "p50_ms": round(percentile(lat, 0.50), 2),
                "p95_ms": round(percentile(lat, 0.95), 2),
            }
    return {
        "schema": 1,
        "timestamp": started.isoformat(timespec="seconds"),
        "settings": {
            **{k: v for k, v in asdict(config).items() if k != "keep_data"},
            "polls": POLLS,
            "rates_per_address": {k: v * config.attack_scale for k, v in RATES.items()},
            # typing.cast: in this module `cast` is the load test's cast of users.
            "rate_limits": dict(typing.cast(dict[str, str], settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])),
        },
        "environment": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "machine": platform.node(),
            "service_mode": getattr(settings, "NEXUS_SERVICE_MODE", None),
            "git_commit": git_commit(root),
        },
        "phases": {
            name: {
                "start": phase["start"].isoformat(timespec="seconds"),
                "end": phase["end"].isoformat(timespec="seconds"),
                "classes": rows[name],
                "request_logs": final[name]["request_logs"],
                "flagged": final[name]["flagged"],
                "detector": final[name]["detector"],
                "detector_runs": len(phase["detector_runs"]),
                "detector_errors": phase["detector_errors"],
            }
            for name, phase in phases.items()
        },
        "attack_kinds": kinds,
        "normal_by_request": normal_requests,
        "normal_latency_by_request": dict(sorted(normal_latency.items())),
        "normal_p95_by_quarter_ms": timeline,
        "blocked": blocked,
        "rules_by_class": {
            cls: dict(sorted(Counter(r for ip, rs in rules.items() if owner.get(ip) == cls for r in rs).items()))
            for cls in CLASSES
        },
        "client_exceptions": exceptions,
        "servers_stopped_cleanly": servers_clean,
        "verdicts": verdicts,
    }


def _verdicts(rows: dict[str, dict[str, dict]]) -> dict:
    normal = [rows[p]["normal"] for p in PHASES if "normal" in rows.get(p, {})]
    no_errors = bool(normal) and all(r["errors"] == 0 for r in normal)
    base, attack = rows.get("baseline", {}).get("normal"), rows.get("attack", {}).get("normal")
    ratio = None
    if base and attack and base["p95_ms"] and attack["p95_ms"]:
        ratio = round(attack["p95_ms"] / base["p95_ms"], 3)
    caught: dict[str, list[str] | None] = {}
    for cls in ATTACKERS:
        row = rows.get("attack", {}).get(cls)
        if row is None:
            caught[cls] = None
            continue
        how = []
        if row["limited_429"]:
            how.append("limited")
        if row["blocked_403"] or row["blocked_addresses"]:
            how.append("blocked")
        if row["flagged_addresses"]:
            how.append("flagged")
        caught[cls] = how
    false_positives = sorted({ip for r in normal for ip in r["flagged_addresses"] + r["blocked_addresses"]})
    return {
        "normal_users_no_errors": no_errors,
        "p95_ratio_attack_over_baseline": ratio,
        "p95_within_2x": None if ratio is None else ratio <= 2.0,
        "attackers_caught": caught,
        "every_attacker_class_caught": all(caught.values()),
        "normal_addresses_flagged_or_blocked": false_positives,
    }


def table(result: dict) -> str:
    s, env = result["settings"], result["environment"]
    lines = [
        "",
        f"Nexus load with abuse  {result['timestamp']}  ({s['duration']:g} s per phase, {s['users']} normal users, "
        f"think {s['think'][0]:g}-{s['think'][1]:g} s, attack scale x{s['attack_scale']:g}, gunicorn {s['workers']} "
        f"sync workers, {env['cpu_count']} CPUs, detector every {s['detect_every']:g} s, "
        f"auto-block {'on' if s['auto_block'] else 'off'})",
        f"  rate limits: {', '.join(f'{k} {v}' for k, v in s['rate_limits'].items())}",
        "",
    ]
    rows = TextTable(
        [
            ("phase", 9, "<"),
            ("class", 20, "<"),
            ("IPs", 4, ">"),
            ("requests", 8, ">"),
            ("2xx", 7, ">"),
            ("4xx", 7, ">"),
            ("5xx", 5, ">"),
            ("err %", 6, ">"),
            ("p50 ms", 8, ">"),
            ("p95 ms", 8, ">"),
            ("429", 6, ">"),
            ("403 blk", 7, ">"),
            (" IPs flagged / blocked", 0, "<"),
        ]
    )
    lines.extend(rows.head())
    for name, phase in result["phases"].items():
        for cls, r in phase["classes"].items():
            rate = "-" if r["error_rate"] is None else f"{100 * r['error_rate']:.2f}"
            caught = f"{len(r['flagged_addresses'])} / {len(r['blocked_addresses'])}"
            lines.append(
                rows.row(
                    name,
                    cls,
                    r["addresses"],
                    r["requests"],
                    r["ok_2xx"],
                    r["client_4xx"],
                    r["server_5xx"] + r["network_errors"],
                    rate,
                    fmt(r["p50_ms"], 1),
                    fmt(r["p95_ms"], 1),
                    r["limited_429"],
                    r["blocked_403"],
                    f" {caught}",
                )
            )
    lines.append("  (err %: every non-2xx answer for normal users, 5xx and network errors for attackers;")
    lines.append("   4xx includes the 429s and the block list's 403s; 5xx column: 5xx + network errors)")
    kinds = result.get("attack_kinds") or {}
    if kinds:
        lines.append("")
        lines.append("  attack detail (status counts per kind of attacker):")
        for kind, counts in sorted(kinds.items()):
            lines.append(f"    {kind:<40} {', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}")
    by_request = result.get("normal_latency_by_request") or {}
    if by_request:
        lines.append("  normal users by request (requests, p50 / p95 ms):")
        for request, per_phase in by_request.items():
            cells = [f"{name} {r['requests']}, {r['p50_ms']:.1f} / {r['p95_ms']:.1f}" for name, r in per_phase.items()]
            lines.append(f"    {request:<40} {'   '.join(cells)}")
    quarters = result.get("normal_p95_by_quarter_ms") or {}
    if quarters:
        cells = [f"{name} {' / '.join(fmt(q, 1) for q in values)}" for name, values in quarters.items()]
        lines.append(f"  normal users' p95 ms per quarter of the phase:  {'   '.join(cells)}")
    rules = {cls: r for cls, r in (result.get("rules_by_class") or {}).items() if r}
    if rules:
        lines.append("  detector rules tripped by the flagged addresses (addresses per rule):")
        for cls, counts in rules.items():
            lines.append(f"    {cls:<40} {', '.join(f'{k}: {v}' for k, v in counts.items())}")
    v = result["verdicts"]
    lines.append("")
    ok = "yes" if v["normal_users_no_errors"] else "NO"
    lines.append(f"  normal users see no errors (no 5xx, no 4xx, no network error, both phases): {ok}")
    ratio = v["p95_ratio_attack_over_baseline"]
    if ratio is None:
        lines.append("  normal users' p95 with attackers / without: n/a")
    else:
        meets = "meets" if v["p95_within_2x"] else "MISSES"
        lines.append(f"  normal users' p95 with attackers / without: x{ratio:.2f} (target <= 2: {meets})")
    for cls, how in v["attackers_caught"].items():
        if how is None:
            continue
        lines.append(f"  {cls:<20} caught: {'yes, ' + ' + '.join(how) if how else 'NO'}")
    fp = v["normal_addresses_flagged_or_blocked"]
    lines.append(f"  normal addresses flagged or blocked: {len(fp)}{' (' + ', '.join(fp) + ')' if fp else ''}")
    if result["client_exceptions"]:
        lines.append(f"  client exceptions: {result['client_exceptions'][:3]}")
    for name, phase in result["phases"].items():
        if phase["detector_errors"]:
            lines.append(f"  detector errors in {name}: {phase['detector_errors'][:3]}")
    return "\n".join(lines)


def passed(result: dict) -> bool:
    """The functional verdicts (the p95 ratio is a measurement, reported, not a pass/fail of the command)."""
    v = result["verdicts"]
    return v["normal_users_no_errors"] and v["every_attacker_class_caught"]
