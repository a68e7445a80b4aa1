"""``manage.py bench``: the REST poll list against a bare Django view, under gunicorn, in one run.

Performance targets live here, never in timed tests (DESIGN.md §9). The machines are shared and noisy, so the
figure that matters is a ratio measured in the same run: rounds alternate between the endpoints (and their
order), and each figure is the median across rounds.

    python manage.py bench                         # ~15-40 s on a 2-core machine
    python manage.py bench --requests 1000 --rounds 7 --concurrency 8 --workers 3
    python manage.py bench --reports               # also time `run_notebooks --profile ci`
    python manage.py bench --json out.json         # also write the results there

The load generator is bounded and loopback-only: ``--concurrency`` client processes, each sending
``http.client`` GETs to 127.0.0.1 one after another (keep-alive when the server allows it; gunicorn's sync
workers close every connection, so each request connects).
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import math
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

ENDPOINTS = {"bare": "/bench/bare/", "api": "/api/polls/"}
MIN_POLLS = 20
HOST = "127.0.0.1"  # loopback only, by design


# ------------------------------------------------------------------- load generator (client processes)
# These run in spawned child processes: stdlib only, no Django.

_PORT = 0


def _client_init(port: int) -> None:
    global _PORT
    _PORT = port
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool


def _client_chunk(task: tuple[str, int, float]) -> tuple[list[float], dict[str, int], float, float]:
    """GET ``path`` ``count`` times; return (latencies of 2xx answers in s, error counts, start, end)."""
    path, count, timeout = task
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    conn: http.client.HTTPConnection | None = None
    start = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes on Linux
    for _ in range(count):
        t0 = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(HOST, _PORT, timeout=timeout)
            conn.request("GET", path, headers={"Accept": "application/json"})
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def _chunks(total: int, concurrency: int) -> list[int]:
    size = max(5, min(50, total // (concurrency * 4) or 1))
    sizes = [size] * (total // size)
    if total % size:
        sizes.append(total % size)
    return sizes


def _git_commit(root: Path) -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if out.returncode == 0:
            return out.stdout.strip()
    return None


class Gunicorn:
    """gunicorn as a subprocess in its own session; :meth:`stop` always ends it (TERM, then KILL)."""

    def __init__(self, *, root: Path, workers: int, env: dict[str, str]):
        self.root = root
        self.workers = workers
        self.env = env
        self.port = _free_port()
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
            "--worker-class",
            "sync",
            "--chdir",
            str(self.root),
            "--error-logfile",
            str(self.log),
            "--log-level",
            "warning",
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
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
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CommandError(
                    f"gunicorn exited with code {self.proc.returncode} while starting:\n{self.log_tail()}"
                )
            try:
                status, body = _get(self.port, "/health/", timeout=5)
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

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)  # graceful: the master stops its workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        with contextlib.suppress(OSError):
            self.log.unlink()
        self.proc = None
        atexit.unregister(self.stop)


# --------------------------------------------------------------------------- the command


class Command(BaseCommand):
    help = (
        "Benchmark GET /api/polls/ against the bare view /bench/bare/ under gunicorn (alternating rounds, "
        "medians, ratio), optionally time the notebook reports; print a table and save JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--requests", type=int, default=300, help="requests per endpoint per round")
        parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (medians across them)")
        parser.add_argument("--concurrency", type=int, default=4, help="client processes (1-64)")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
        parser.add_argument(
            "--endpoints",
            default="bare,api",
            help=f"comma-separated subset of {', '.join(ENDPOINTS)} (default: both)",
        )
        parser.add_argument("--json", dest="json_path", help="also write the JSON results to this path")
        parser.add_argument("--results-dir", help="folder for bench-<time>.json (default: bench/results)")
        parser.add_argument(
            "--reports", action="store_true", help="also time `run_notebooks --profile PROFILE` (wall time)"
        )
        parser.add_argument("--reports-profile", default="ci", help="notebook parameter profile (--reports)")
        parser.add_argument("--debug", action="store_true", help="run gunicorn with DEBUG on (default: off)")
        parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")

    # ----------------------------------------------------------------------- entry point
    def handle(self, *args, **opts):
        from django.conf import settings

        endpoints = [e.strip() for e in opts["endpoints"].split(",") if e.strip()]
        unknown = sorted(set(endpoints) - set(ENDPOINTS))
        if unknown or not endpoints:
            raise CommandError(f"--endpoints: choose from {', '.join(ENDPOINTS)} (got {opts['endpoints']!r})")
        for name in ("requests", "rounds", "workers"):
            if opts[name] < 1:
                raise CommandError(f"--{name} must be at least 1")
        if not 1 <= opts["concurrency"] <= 64:
            raise CommandError("--concurrency must be between 1 and 64")

        root = Path(settings.NEXUS_PROJECT_ROOT)
        started = datetime.now(UTC)
        result: dict = {
            "schema": 1,
            "timestamp": started.isoformat(timespec="seconds"),
            "settings": {
                "requests_per_round": opts["requests"],
                "rounds": opts["rounds"],
                "concurrency": opts["concurrency"],
                "gunicorn_workers": opts["workers"],
                "endpoints": {name: ENDPOINTS[name] for name in endpoints},
                "debug": bool(opts["debug"]),
            },
            "environment": {
                "python": platform.python_version(),
                "django": __import__("django").get_version(),
                "cpu_count": os.cpu_count(),
                "service_mode": getattr(settings, "NEXUS_SERVICE_MODE", None),
                "git_commit": _git_commit(root),
            },
            "endpoints": {},
            "ratio_api_over_bare": None,
            "reports": None,
        }

        previous_term = self._raise_on_sigterm()
        try:
            result["endpoints"] = self._bench_http(root, endpoints, opts)
            result["ratio_api_over_bare"] = self._ratio(result["endpoints"])
            if opts["reports"]:
                result["reports"] = self._time_reports(root, opts["reports_profile"])
        except KeyboardInterrupt:
            raise CommandError("interrupted; gunicorn and the client processes were stopped") from None
        finally:
            if previous_term is not None:
                signal.signal(signal.SIGTERM, previous_term)

        self._print_table(result)
        self._save(result, root, started, opts)

    # ----------------------------------------------------------------------- HTTP
    def _bench_http(self, root: Path, endpoints: list[str], opts) -> dict:
        from django.db import connections

        env = dict(os.environ)
        env.setdefault("DJANGO_SETTINGS_MODULE", "nexus_backend.settings")
        # The database this process uses (under pytest: the test database) is the one gunicorn must use.
        env["NEXUS_DB_NAME"] = str(connections["default"].settings_dict["NAME"])
        env["DEBUG"] = "true" if opts["debug"] else "false"
        env["PYTHONUNBUFFERED"] = "1"

        server = Gunicorn(root=root, workers=opts["workers"], env=env)
        pool = None
        results: dict = {}
        try:
            debug = "on" if opts["debug"] else "off"
            self.stdout.write(
                f"starting gunicorn ({opts['workers']} sync workers, DEBUG {debug}) on {HOST}:{server.port}"
            )
            server.start()
            status, body = server.wait_healthy()
            if status != 200:
                failing = {k: v.get("detail") for k, v in body.get("checks", {}).items() if not v.get("ok")}
                self.stderr.write(
                    f"warning: /health/ answers {status} ({failing or body}); benchmarking anyway "
                    "(the endpoints measured may not need the failing service)"
                )

            active = []
            for name in endpoints:
                path = ENDPOINTS[name]
                try:
                    code, payload = _get(server.port, path, timeout=30)
                except OSError as exc:
                    code, payload = 0, str(exc).encode()
                if code == 404 and name == "api":
                    msg = (
                        f"GET {path} answered 404: the REST poll list is not there (yet); "
                        "skipping the API row and the ratio."
                    )
                    self.stderr.write(msg)
                    results[name] = {"path": path, "skipped": msg}
                elif not 200 <= code < 300:
                    msg = f"GET {path} answered {code or 'nothing'}: {payload[:200]!r}; skipping {name}."
                    self.stderr.write(msg)
                    results[name] = {"path": path, "skipped": msg}
                else:
                    active.append(name)
            if not active:
                raise CommandError("no endpoint to benchmark (see the messages above)")

            if "api" in active:
                seeded = self._seed_polls()
                if seeded:
                    self.stdout.write(f"seeded {seeded} bench polls (the list needs at least {MIN_POLLS})")

            connections.close_all()  # nothing of ours stays open while the clients run
            ctx = multiprocessing.get_context("spawn")
            pool = ctx.Pool(opts["concurrency"], initializer=_client_init, initargs=(server.port,))

            # Warm-up: every worker imports and caches what it needs before anything is measured.
            for name in active:
                warm = _chunks(max(opts["concurrency"] * 5, opts["workers"] * 10), opts["concurrency"])
                pool.map(_client_chunk, [(ENDPOINTS[name], n, 30.0) for n in warm])

            rounds: dict[str, list[dict]] = {name: [] for name in active}
            total = opts["rounds"] * len(active) * opts["requests"]
            progress = self._progress(total, opts["no_progress"])
            try:
                for r in range(opts["rounds"]):
                    order = active if r % 2 == 0 else list(reversed(active))  # alternate to be fair
                    for name in order:
                        progress.set_description(f"round {r + 1}/{opts['rounds']} {name}")
                        rounds[name].append(self._round(pool, ENDPOINTS[name], opts, progress))
            finally:
                progress.close()

            for name in active:
                results[name] = self._summarise(ENDPOINTS[name], rounds[name])
            return results
        finally:
            # A second Ctrl-C (or a signal sent to the whole process group) must not skip the cleanup.
            with _sigint_ignored():
                try:
                    if pool is not None:
                        pool.terminate()
                        pool.join()
                finally:
                    server.stop()
                    self.stdout.write("gunicorn stopped")

    def _round(self, pool, path: str, opts, progress) -> dict:
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        starts, ends = [], []
        tasks = [(path, n, 30.0) for n in _chunks(opts["requests"], opts["concurrency"])]
        for lat, errs, start, end in pool.imap_unordered(_client_chunk, tasks):
            latencies.extend(lat)
            errors.update(errs)
            starts.append(start)
            ends.append(end)
            progress.update(len(lat) + sum(errs.values()))
        wall = max(ends) - min(starts)
        latencies.sort()
        return {
            "ok": len(latencies),
            "errors": dict(errors),
            "wall_s": round(wall, 4),
            "requests_per_s": round(len(latencies) / wall, 1) if wall > 0 else None,
            "p50_ms": round(_percentile(latencies, 0.50) * 1000, 3) if latencies else None,
            "p95_ms": round(_percentile(latencies, 0.95) * 1000, 3) if latencies else None,
        }

    @staticmethod
    def _summarise(path: str, rounds: list[dict]) -> dict:
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

    @staticmethod
    def _ratio(endpoints: dict) -> dict | None:
        api, bare = endpoints.get("api"), endpoints.get("bare")
        if not api or not bare or "skipped" in api or "skipped" in bare:
            return None
        # Paired per round (both ran in the same round, side by side), then the median across rounds.
        pairs = [
            (a["requests_per_s"], b["requests_per_s"], a["p50_ms"], b["p50_ms"])
            for a, b in zip(api["rounds"], bare["rounds"], strict=True)
            if a["requests_per_s"] and b["requests_per_s"] and a["p50_ms"] and b["p50_ms"]
        ]
        if not pairs:
            return None
        return {
            "throughput": round(statistics.median(a / b for a, b, _, _ in pairs), 3),
            "p50_latency": round(statistics.median(c / d for _, _, c, d in pairs), 3),
        }

    @staticmethod
    def _progress(total: int, disabled: bool):
        from tqdm import tqdm

        # disable=None: no bar when stderr is not a terminal (CI logs)
        return tqdm(total=total, unit="req", disable=True if disabled else None, leave=False)

    def _seed_polls(self) -> int:
        from django.contrib.auth import get_user_model

        from nexus_backend.polls.models import Poll
        from nexus_backend.polls.services import poll_create

        missing = MIN_POLLS - Poll.objects.count()
        if missing <= 0:
            return 0
        user, created = get_user_model().objects.get_or_create(
            username="bench", defaults={"email": "bench@example.invalid"}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        for i in range(missing):
            poll_create(
                owner=user,
                question=f"Benchmark poll {i + 1}: which one?",
                options=["Alpha", "Beta", "Gamma", "Delta"],
            )
        return missing

    # ----------------------------------------------------------------------- reports
    def _time_reports(self, root: Path, profile: str) -> dict:
        from django.core.management import get_commands

        command = ["python", "manage.py", "run_notebooks", "--profile", profile]
        if "run_notebooks" not in get_commands():
            msg = "manage.py run_notebooks does not exist (yet): the report pipeline was not timed."
            self.stderr.write(msg)
            return {"command": " ".join(command), "skipped": msg}
        self.stdout.write(f"timing: {' '.join(command)}")
        start = time.monotonic()
        proc = subprocess.run([sys.executable, str(root / "manage.py"), *command[2:]], cwd=root)
        wall = time.monotonic() - start
        if proc.returncode != 0:
            self.stderr.write(f"run_notebooks exited with code {proc.returncode}")
        return {"command": " ".join(command), "wall_s": round(wall, 2), "returncode": proc.returncode}

    # ----------------------------------------------------------------------- output
    def _print_table(self, result: dict) -> None:
        s, machine = result["settings"], result["environment"]
        head = ("endpoint", "path", "req/s", "p50 ms", "p95 ms", "ok", "errors")
        lines = [
            "",
            f"Nexus bench  {result['timestamp']}  ({s['rounds']} rounds x {s['requests_per_round']} requests "
            f"per endpoint, {s['concurrency']} clients, gunicorn {s['gunicorn_workers']} sync workers, "
            f"{machine['cpu_count']} CPUs, services: {machine['service_mode']})",
            "",
            "  {:<8} {:<14} {:>9} {:>9} {:>9} {:>7} {:>7}".format(*head),
            "  {:<8} {:<14} {:>9} {:>9} {:>9} {:>7} {:>7}".format(*("-" * w for w in (8, 14, 9, 9, 9, 7, 7))),
        ]
        for name, row in result["endpoints"].items():
            if "skipped" in row:
                lines.append(f"  {name:<8} {row['path']:<14} skipped: {row['skipped']}")
                continue
            rps, p50, p95 = _fmt(row["requests_per_s"], 1), _fmt(row["p50_ms"], 2), _fmt(row["p95_ms"], 2)
            ok, errors = row["ok"], sum(row["errors"].values())
            lines.append(f"  {name:<8} {row['path']:<14} {rps:>9} {p50:>9} {p95:>9} {ok:>7} {errors:>7}")
            if row["errors"]:
                lines.append(f"  {'':<8} errors: {row['errors']}")
        lines.append("")
        ratio = result["ratio_api_over_bare"]
        if ratio:
            lines.append(
                f"  api / bare: throughput x{ratio['throughput']:.3f}, "
                f"median latency x{ratio['p50_latency']:.2f}  (medians of per-round ratios)"
            )
        else:
            lines.append("  api / bare: n/a (both rows are needed)")
        reports = result["reports"]
        if reports:
            if "skipped" in reports:
                lines.append(f"  reports: skipped: {reports['skipped']}")
            else:
                lines.append(
                    f"  reports: `{reports['command']}` took {reports['wall_s']:.1f} s wall "
                    f"(exit code {reports['returncode']})"
                )
        lines.append("  (medians across rounds; compare ratios, not absolute numbers, across machines)")
        self.stdout.write("\n".join(lines))

    def _save(self, result: dict, root: Path, started: datetime, opts) -> None:
        results_dir = Path(opts["results_dir"]) if opts["results_dir"] else root / "bench" / "results"
        results_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, indent=2) + "\n"
        paths = [results_dir / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"]
        if opts["json_path"]:
            paths.append(Path(opts["json_path"]))
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.stdout.write("saved " + " and ".join(str(p) for p in paths))

    @staticmethod
    def _raise_on_sigterm():
        """SIGTERM raises KeyboardInterrupt, so the finally blocks stop gunicorn; returns the old handler."""

        def handler(signum, frame):
            raise KeyboardInterrupt

        try:
            return signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread
            return None


@contextlib.contextmanager
def _sigint_ignored():
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to do
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
