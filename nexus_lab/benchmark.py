"""The benchmark harness shared by every benchmark and load test that runs Nexus under a real gunicorn.

One place for: the loopback load generator (``client_chunk`` in spawned client processes, ``run_round``,
``summarise_rounds``, ``percentile``), rounds over several targets side by side and their ratios (``warm_up``,
``alternate_rounds``, ``paired_ratio``), gunicorn and the request-log flusher as subprocesses that always stop
(``Gunicorn``, ``Flusher``, ``terminate``; ``stop_all`` stops them with the client pool), the environment those
servers get (``server_env``) and small helpers (``free_port``, ``http_get``, ``git_commit``, ``sigint_ignored``,
``raise_on_sigterm``, ``fmt``).

Used by ``manage.py bench``, ``bench_cache`` (``nexus_lab.caching.bench``), ``load`` and the fault tests. Every
server listens on 127.0.0.1 only and every request loop here is bounded.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

USER_AGENT = "nexus-bench"  # every request a benchmark sends says so; its request logs are found by it
HOST = "127.0.0.1"  # loopback only, by design


# --------------------------------------------------------------------------- load generator (client processes)
# These run in spawned child processes: stdlib only, no Django.


def client_init() -> None:
    """Pool initializer: the parent handles Ctrl-C and stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def client_chunk(task: tuple) -> tuple[list[float], dict[str, int], float, float]:
    """GET ``path`` ``count`` times on ``port``; return (latencies of 2xx answers in s, error counts, start, end)."""
    port, path, count, timeout, user_agent = task
    headers = {"Accept": "application/json", "User-Agent": user_agent}
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    conn: http.client.HTTPConnection | None = None
    start = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes on Linux
    for _ in range(count):
        t0 = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            if resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            if conn is not None:
                conn.close()
                conn = None
            errors[type(exc).__name__] += 1
            continue
        elapsed = time.perf_counter() - t0
        if 200 <= status < 300:
            latencies.append(elapsed)
        else:
            errors[f"HTTP {status}"] += 1
    end = time.monotonic()
    if conn is not None:
        conn.close()
    return latencies, dict(errors), start, end


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now (for a server of our own)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET on 127.0.0.1:``port``; returns (status, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": "application/json", "User-Agent": f"{USER_AGENT}/setup"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def save_result(
    result: dict, *, name: str, started: datetime, results_dir: Path, extra: Path | None = None
) -> list[Path]:
    """Write ``result`` as JSON to ``results_dir/<name>-<UTC stamp>.json`` (and to ``extra`` when given); return the
    paths. The one results writer of every benchmark and the load test (``bench/results/`` by default)."""
    stamp = (started.astimezone(UTC) if started.tzinfo else started).strftime("%Y%m%dT%H%M%SZ")
    paths = [results_dir / f"{name}-{stamp}.json"] + ([extra] if extra is not None else [])
    for path in paths:
        write_json(result, path)
    return paths


def publish(result: dict, *, name: str, started: datetime, options: dict, write) -> list[Path]:
    """How every bench and load command ends: ``result`` saved (:func:`save_result`) in ``--results-dir`` (default
    ``bench/results`` under the project root) and at ``--json`` when given, and a line saying where."""
    root = Path(settings.NEXUS_PROJECT_ROOT)
    folder = Path(options["results_dir"]) if options.get("results_dir") else root / "bench" / "results"
    extra = Path(options["json_path"]) if options.get("json_path") else None
    paths = save_result(result, name=name, started=started, results_dir=folder, extra=extra)
    write("saved " + " and ".join(str(p) for p in paths))
    return paths


def write_json(data, path: Path) -> Path:
    """``data`` as indented JSON at ``path`` (its folder made if missing; values JSON lacks, such as datetimes, as
    text). The one writer of every result file: the benchmarks, the load test, ``run_workload --json`` and the
    reports manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of ``values``, sorted or not; NaN when empty. The one implementation
    every benchmark and the load test use."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def chunks(total: int, concurrency: int) -> list[int]:
    """Split ``total`` requests into chunks small enough to keep ``concurrency`` clients busy to the end."""
    size = max(5, min(50, total // (concurrency * 4) or 1))
    sizes = [size] * (total // size)
    if total % size:
        sizes.append(total % size)
    return sizes


def git_commit(root: Path) -> str:
    """Short sha of HEAD, with ``+dirty`` when the working tree has changes; ``unknown`` outside git. Recorded with
    every benchmark, load and report result (the one implementation: the notebook runner uses it too)."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if sha.returncode != 0 or not sha.stdout.strip():
            return "unknown"
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    dirty = status.returncode != 0 or bool(status.stdout.strip())
    return sha.stdout.strip() + ("+dirty" if dirty else "")


def run_round(pool, port: int, path: str, requests: int, concurrency: int, user_agent: str, progress) -> dict:
    """One round: ``requests`` GETs of ``path`` split over ``concurrency`` client processes of ``pool``.

    Returns ok/error counts, wall time, requests/s and p50/p95 latency (ms). Shared by every gunicorn benchmark."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    starts, ends = [], []
    tasks = [(port, path, n, 30.0, user_agent) for n in chunks(requests, concurrency)]
    for lat, errs, start, end in pool.imap_unordered(client_chunk, tasks):
        latencies.extend(lat)
        errors.update(errs)
        starts.append(start)
        ends.append(end)
        if progress is not None:
            progress.update(len(lat) + sum(errs.values()))
    wall = max(ends) - min(starts)
    latencies.sort()
    return {
        "ok": len(latencies),
        "errors": dict(errors),
        "wall_s": round(wall, 4),
        "requests_per_s": round(len(latencies) / wall, 1) if wall > 0 else None,
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3) if latencies else None,
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 3) if latencies else None,
    }


def warm_up(pool, targets: dict[str, tuple[int, str]], *, concurrency: int, workers: int, user_agent: str) -> None:
    """A few unmeasured GETs of every target (name: (port, path)), so that every client process and gunicorn worker
    has imported, connected and cached what it needs before anything is measured."""
    warm = chunks(max(concurrency * 5, workers * 10), concurrency)
    for port, path in targets.values():
        pool.map(client_chunk, [(port, path, n, 30.0, user_agent) for n in warm])


def alternate_rounds(
    pool,
    targets: dict[str, tuple[int, str]],
    *,
    rounds: int,
    requests: int,
    concurrency: int,
    user_agent: str,
    progress: bool,
) -> dict[str, list[dict]]:
    """``rounds`` rounds of :func:`run_round` over every target (name: (port, path)), side by side: each round
    rotates the order of the targets by the round number and reverses it on odd rounds, so no target always runs
    first or after the same neighbour. Returns every target's rounds, in the order of ``targets``; ``progress``
    shows a tqdm bar (only on a terminal)."""
    from tqdm import tqdm

    names = list(targets)
    measured: dict[str, list[dict]] = {name: [] for name in names}
    # disable=None: no bar when stderr is not a terminal (CI logs)
    bar = tqdm(total=rounds * len(names) * requests, unit="req", leave=False, disable=None if progress else True)
    try:
        for r in range(rounds):
            shift = r % len(names)
            order = names[shift:] + names[:shift]
            if r % 2:
                order.reverse()
            for name in order:
                bar.set_description(f"round {r + 1}/{rounds} {name}")
                port, path = targets[name]
                measured[name].append(run_round(pool, port, path, requests, concurrency, user_agent, bar))
    finally:
        bar.close()
    return measured


def summarise_rounds(path: str, rounds: list[dict]) -> dict:
    """Medians across rounds (requests/s, p50, p95), totals, and the rounds themselves."""

    def median(key):
        values = [r[key] for r in rounds if r[key] is not None]
        return round(statistics.median(values), 3) if values else None

    errors: Counter[str] = Counter()
    for r in rounds:
        errors.update(r["errors"])
    return {
        "path": path,
        "requests_per_s": median("requests_per_s"),
        "p50_ms": median("p50_ms"),
        "p95_ms": median("p95_ms"),
        "ok": sum(r["ok"] for r in rounds),
        "errors": dict(errors),
        "rounds": rounds,
    }


def paired_ratio(rounds: list[dict], baseline: list[dict]) -> dict | None:
    """``rounds`` over ``baseline``, paired per round (both measured in the same round, side by side), then the
    median across rounds: throughput, p50 latency, and the per-round throughput ratios. None when no round has
    both figures on both sides."""
    pairs = [
        (a["requests_per_s"], b["requests_per_s"], a["p50_ms"], b["p50_ms"])
        for a, b in zip(rounds, baseline, strict=True)
        if a["requests_per_s"] and b["requests_per_s"] and a["p50_ms"] and b["p50_ms"]
    ]
    if not pairs:
        return None
    return {
        "throughput": round(statistics.median(a / b for a, b, _, _ in pairs), 3),
        "p50_latency": round(statistics.median(c / d for _, _, c, d in pairs), 3),
        "per_round_throughput": [round(a / b, 3) for a, b, _, _ in pairs],
    }


def terminate(proc: subprocess.Popen, *, timeout: float) -> bool:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL the process group. True when it exited by itself with 0."""
    clean = True
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            clean = False
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    return clean and proc.returncode == 0


class Gunicorn:
    """gunicorn as a subprocess in its own session; :meth:`stop` always ends it (TERM, then KILL)."""

    def __init__(self, *, root: Path, workers: int, env: dict[str, str], as_deployed: bool = False):
        self.root = root
        self.workers = workers
        self.env = env
        # False: sync workers with a 60 s timeout (the benchmarks' fixed baseline). True: gunicorn.conf.py's worker
        # class, threads and timeouts, as the Docker image runs them (the security tests).
        self.as_deployed = as_deployed
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix="nexus-bench-gunicorn-", suffix=".log")[1])

    @staticmethod
    def binary() -> str:
        beside = Path(sys.executable).parent / "gunicorn"  # the venv's gunicorn
        found = str(beside) if beside.exists() else shutil.which("gunicorn")
        if not found:
            raise CommandError("gunicorn is not installed in this environment: make install")
        return found

    def start(self) -> None:
        cmd = [
            self.binary(),
            "nexus_backend.wsgi:application",
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(self.workers),
            "--chdir",
            str(self.root),
            "--error-logfile",
            str(self.log),
            "--log-level",
            "warning",
            "--graceful-timeout",
            "5",
        ]
        if not self.as_deployed:
            cmd += ["--worker-class", "sync", "--timeout", "60"]
        with open(self.log, "ab") as output:  # the app's own log lines (stderr) go beside gunicorn's error log
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=output,
                start_new_session=True,  # Ctrl-C reaches us, not gunicorn; we stop it ourselves
            )
        atexit.register(self.stop)  # last resort if the interpreter exits some other way

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def wait_healthy(self, timeout: float = 60.0) -> tuple[int, dict]:
        """Wait until /health/ answers. Returns (status, body); a 503 is accepted after a short grace."""
        deadline = time.monotonic() + timeout
        first_answer: float | None = None
        last: tuple[int, dict] | None = None
        assert self.proc is not None, "start() first"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CommandError(
                    f"gunicorn exited with code {self.proc.returncode} while starting:\n{self.log_tail()}"
                )
            try:
                status, body = http_get(self.port, "/health/", timeout=5)
            except OSError:
                time.sleep(0.2)
                continue
            with contextlib.suppress(ValueError):
                last = (status, json.loads(body or b"{}"))
            if last is None:
                last = (status, {})
            if status == 200:
                return last
            first_answer = first_answer or time.monotonic()
            if time.monotonic() - first_answer > 5:
                return last
            time.sleep(0.3)
        if last is not None:
            return last
        raise CommandError(f"gunicorn did not answer /health/ within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> bool:
        """SIGTERM: graceful (workers finish their request and run their exit hooks); KILL after 15 s.

        Returns True when gunicorn stopped by itself with exit code 0."""
        if self.proc is None:
            return True
        graceful = terminate(self.proc, timeout=15)  # SIGTERM: the master stops its workers
        with contextlib.suppress(OSError):
            self.log.unlink()
        self.proc = None
        atexit.unregister(self.stop)
        return graceful


class Flusher:
    """``manage.py flush_request_logs --loop`` as a subprocess; :meth:`stop` sends SIGTERM (a last pass runs)."""

    def __init__(self, *, root: Path, env: dict[str, str], interval: float = 0.5):
        self.root, self.env, self.interval = root, env, interval
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "flush_request_logs", "--loop", "--interval", str(self.interval)],
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        atexit.register(self.stop)

    def stop(self) -> bool:
        if self.proc is None:
            return True
        clean = terminate(self.proc, timeout=60)  # SIGTERM: a last flush pass runs
        self.proc = None
        atexit.unregister(self.stop)
        return clean


def server_env(*, debug: bool = False, **extra: str) -> dict[str, str]:
    """The environment of a gunicorn (or flusher) under test: this process's, the database it uses (under pytest
    the test database), DEBUG off unless asked, then ``extra`` (e.g. ``NEXUS_REQUEST_LOGGING="on"``)."""
    from django.db import connections

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "nexus_backend.settings")
    env["NEXUS_DB_NAME"] = str(connections["default"].settings_dict["NAME"])
    env["DEBUG"] = "true" if debug else "false"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore Ctrl-C inside the block: a second Ctrl-C must not skip stopping the servers."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to do
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_all(pool, *servers) -> None:
    """Stop the client ``pool`` (None: there is none yet), then every server (anything with ``stop()``: a
    :class:`Gunicorn`, a :class:`Flusher`), in order, even when stopping the pool fails. Ctrl-C is ignored meanwhile:
    a second Ctrl-C (or a signal sent to the whole process group) must not skip the cleanup."""
    with sigint_ignored():
        try:
            if pool is not None:
                pool.terminate()
                pool.join()
        finally:
            for server in servers:
                server.stop()


def raise_on_sigterm():
    """Make SIGTERM raise KeyboardInterrupt, so the ``finally`` blocks stop gunicorn; returns the old handler
    (None when not in the main thread)."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return None


def fmt(value, digits: int, *, grouped: bool = False) -> str:
    """A number for a table: ``-`` for None; ``grouped``: thousands separated by commas."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if grouped else f"{value:.{digits}f}"


def _rule(title: str, width: int) -> str:
    """Dashes under a column: its width, or (a last column, width 0) its title, leading spaces kept."""
    if width:
        return "-" * width
    text = title.lstrip()
    return title[: len(title) - len(text)] + "-" * len(text)


class TextTable:
    """The one table formatter of the lab's reports: fixed-width columns, a header line and a rule under it.

    ``columns`` are ``(title, width, align)`` with ``align`` ``"<"`` (left) or ``">"`` (right); a width of 0 is a
    last column as wide as its text. ``indent`` starts every line, ``sep`` stands between columns."""

    def __init__(self, columns: Sequence[tuple[str, int, str]], *, indent: str = "  ", sep: str = " ") -> None:
        self.columns = list(columns)
        self.template = indent + sep.join(f"{{:{align}{width}}}" if width else "{}" for _, width, align in self.columns)

    def row(self, *values) -> str:
        return self.template.format(*values)

    def head(self) -> list[str]:
        """The header line and the rule under it."""
        return [
            self.row(*(title for title, _, _ in self.columns)),
            self.row(*(_rule(title, width) for title, width, _ in self.columns)),
        ]
