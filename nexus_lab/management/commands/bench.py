"""``manage.py bench``: throughput under gunicorn, as ratios measured in one run.

Two sections (both by default):

- **endpoints**: the REST poll list against a bare Django view (``api / bare``);
- **logging**: one logged endpoint (default the bare view, the harshest case) served by gunicorns that differ
  only in ``NEXUS_REQUEST_LOGGING``: ``off``, ``on`` (buffered, off the request path, flushed with COPY by a
  ``flush_request_logs --loop`` process running during the measurement, so its cost is counted) and ``sync``
  (the naive INSERT per request, for comparison); then a **zero-loss check**: ``--zero-loss`` requests (10,000)
  to the ``on`` server, a graceful stop (SIGTERM), a final flush, and a count of the ``RequestLog`` rows those
  requests left (tagged by their User-Agent) — it must equal the requests answered.

Performance targets live here, never in timed tests (docs/benchmarks.md). The machines are shared and noisy, so the
figure that matters is a ratio measured in the same run: rounds alternate between the servers (and their
order), and each figure is the median across rounds.

    python manage.py bench                         # ~1-2 min on a 2-core machine
    python manage.py bench --sections logging      # logging on/off/sync + the 10,000-request zero-loss check
    python manage.py bench --requests 1000 --rounds 7 --concurrency 8 --workers 3
    python manage.py bench --reports               # also time `run_notebooks --profile ci`
    python manage.py bench --json out.json         # also write the results there

The load generator (``nexus_lab.benchmark``) is bounded and loopback-only: ``--concurrency`` client
processes, each sending ``http.client`` GETs to 127.0.0.1 one after another (keep-alive when the server allows it;
gunicorn's sync workers close every connection, so each request connects). The request logs the benchmark makes
are deleted at the end (``--keep-logs`` keeps them).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from nexus_lab.benchmark import (
    HOST,
    USER_AGENT,
    Flusher,
    Gunicorn,
    TextTable,
    alternate_rounds,
    client_init,
    fmt,
    git_commit,
    http_get,
    paired_ratio,
    publish,
    raise_on_sigterm,
    run_round,
    server_env,
    stop_all,
    summarise_rounds,
    warm_up,
)

ENDPOINTS = {"bare": "/bench/bare/", "api": "/api/polls/"}
SECTIONS = ("endpoints", "logging")
LOGGING_VARIANTS = ("off", "on", "sync")
MIN_POLLS = 20


def _choices(value: str, allowed: tuple[str, ...], option: str) -> list[str]:
    chosen = [item.strip() for item in value.split(",") if item.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown or not chosen:
        raise CommandError(f"{option}: choose from {', '.join(allowed)} (got {value!r})")
    return list(dict.fromkeys(chosen))


# --------------------------------------------------------------------------- the command


class Command(BaseCommand):
    help = (
        "Benchmark under gunicorn (alternating rounds, medians, ratios): GET /api/polls/ against the bare view, "
        "and a logged endpoint with request logging off / on / sync plus a zero-loss check; print a table and "
        "save JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--requests", type=int, default=1000, help="requests per server per round")
        parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (medians across them)")
        parser.add_argument("--concurrency", type=int, default=4, help="client processes (1-64)")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
        parser.add_argument(
            "--sections",
            default=",".join(SECTIONS),
            help=f"comma-separated subset of {', '.join(SECTIONS)} (default: both)",
        )
        parser.add_argument(
            "--endpoints",
            default="bare,api",
            help=f"endpoints section: comma-separated subset of {', '.join(ENDPOINTS)} (default: both)",
        )
        parser.add_argument(
            "--logging-variants",
            default=",".join(LOGGING_VARIANTS),
            help="logging section: NEXUS_REQUEST_LOGGING values to compare; must include off (default: off,on,sync)",
        )
        parser.add_argument(
            "--logging-path", default=ENDPOINTS["bare"], help="logging section: the endpoint (default /bench/bare/)"
        )
        parser.add_argument(
            "--zero-loss",
            type=int,
            default=10_000,
            help="logging section: requests sent to the `on` server before a graceful stop, then RequestLog rows "
            "counted (0: skip; needs the `on` variant)",
        )
        parser.add_argument("--keep-logs", action="store_true", help="keep the request logs the benchmark made")
        parser.add_argument("--json", dest="json_path", help="also write the JSON results to this path")
        parser.add_argument("--results-dir", help="folder for bench-<time>.json (default: bench/results)")
        parser.add_argument(
            "--reports", action="store_true", help="also time `run_notebooks --profile PROFILE` (wall time)"
        )
        parser.add_argument("--reports-profile", default="ci", help="notebook parameter profile (--reports)")
        parser.add_argument("--debug", action="store_true", help="run gunicorn with DEBUG on (default: off)")
        parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")

    # ----------------------------------------------------------------------- entry point
    def handle(self, *args: Any, **opts: Any) -> None:
        from django.conf import settings

        sections = _choices(opts["sections"], SECTIONS, "--sections")
        endpoints = _choices(opts["endpoints"], tuple(ENDPOINTS), "--endpoints")
        variants = _choices(opts["logging_variants"], LOGGING_VARIANTS, "--logging-variants")
        if "logging" in sections and "off" not in variants:
            raise CommandError("--logging-variants must include off: the other variants are compared with it")
        if not opts["logging_path"].startswith("/"):
            raise CommandError(f"--logging-path must be a path like /bench/bare/, got {opts['logging_path']!r}")
        for name in ("requests", "rounds", "workers"):
            if opts[name] < 1:
                raise CommandError(f"--{name} must be at least 1")
        if not 1 <= opts["concurrency"] <= 64:
            raise CommandError("--concurrency must be between 1 and 64")
        if not 0 <= opts["zero_loss"] <= 100_000:
            raise CommandError("--zero-loss must be between 0 and 100000")
        if opts["zero_loss"] and "logging" in sections and "on" not in variants:
            raise CommandError("--zero-loss needs the `on` logging variant (or --zero-loss 0)")

        root = Path(settings.NEXUS_PROJECT_ROOT)
        started = datetime.now(UTC)
        run_id = started.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
        result: dict = {
            "schema": 2,
            "timestamp": started.isoformat(timespec="seconds"),
            "settings": {
                "requests_per_round": opts["requests"],
                "rounds": opts["rounds"],
                "concurrency": opts["concurrency"],
                "gunicorn_workers": opts["workers"],
                "sections": sections,
                "endpoints": {name: ENDPOINTS[name] for name in endpoints} if "endpoints" in sections else {},
                "logging_variants": variants if "logging" in sections else [],
                "logging_path": opts["logging_path"],
                "zero_loss_requests": opts["zero_loss"] if "logging" in sections else 0,
                "debug": bool(opts["debug"]),
            },
            "environment": {
                "python": platform.python_version(),
                "django": __import__("django").get_version(),
                "cpu_count": os.cpu_count(),
                "service_mode": getattr(settings, "NEXUS_SERVICE_MODE", None),
                "git_commit": git_commit(root),
            },
            "endpoints": {},
            "ratio_api_over_bare": None,
            "logging": None,
            "reports": None,
        }

        previous_term = raise_on_sigterm()
        try:
            if "endpoints" in sections:
                result["endpoints"] = self._bench_http(root, endpoints, opts, run_id)
                result["ratio_api_over_bare"] = self._ratio(result["endpoints"])
            if "logging" in sections:
                result["logging"] = self._bench_logging(root, variants, opts, run_id)
            if opts["reports"]:
                result["reports"] = self._time_reports(root, opts["reports_profile"])
        except KeyboardInterrupt:
            raise CommandError("interrupted; gunicorn and the client processes were stopped") from None
        finally:
            if previous_term is not None:
                signal.signal(signal.SIGTERM, previous_term)
            if not opts["keep_logs"]:
                self._delete_bench_logs(run_id)

        self._print_table(result)
        self._save(result, root, started, opts)

    # ----------------------------------------------------------------------- section: endpoints
    def _bench_http(self, root: Path, endpoints: list[str], opts, run_id: str) -> dict:
        from django.db import connections

        user_agent = f"{USER_AGENT}/{run_id}/endpoints"
        server = Gunicorn(root=root, workers=opts["workers"], env=server_env(debug=opts["debug"]))
        pool = None
        results: dict = {}
        try:
            debug = "on" if opts["debug"] else "off"
            self.stdout.write(
                f"starting gunicorn ({opts['workers']} sync workers, DEBUG {debug}) on {HOST}:{server.port}"
            )
            server.start()
            self._check_health(server)

            active = []
            for name in endpoints:
                path = ENDPOINTS[name]
                try:
                    code, payload = http_get(server.port, path, timeout=30)
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
            pool = multiprocessing.get_context("spawn").Pool(opts["concurrency"], initializer=client_init)
            targets = {name: (server.port, ENDPOINTS[name]) for name in active}
            rounds = self._alternate(pool, targets, opts, user_agent)
            for name in active:
                results[name] = summarise_rounds(ENDPOINTS[name], rounds[name])
            return results
        finally:
            stop_all(pool, server)  # even after a second Ctrl-C
            self.stdout.write("gunicorn stopped")

    def _check_health(self, server: Gunicorn) -> None:
        status, body = server.wait_healthy()
        if status != 200:
            failing = {k: v.get("detail") for k, v in body.get("checks", {}).items() if not v.get("ok")}
            self.stderr.write(
                f"warning: /health/ answers {status} ({failing or body}); benchmarking anyway "
                "(the endpoints measured may not need the failing service)"
            )

    def _alternate(self, pool, targets: dict[str, tuple[int, str]], opts, user_agent: str) -> dict[str, list]:
        """Warm every target up, then ``--rounds`` rounds over all of them, alternating their order."""
        warm_up(pool, targets, concurrency=opts["concurrency"], workers=opts["workers"], user_agent=user_agent)
        return alternate_rounds(
            pool,
            targets,
            rounds=opts["rounds"],
            requests=opts["requests"],
            concurrency=opts["concurrency"],
            user_agent=user_agent,
            progress=not opts["no_progress"],
        )

    # ----------------------------------------------------------------------- section: logging
    def _bench_logging(self, root: Path, variants: list[str], opts, run_id: str) -> dict:
        from django.db import connections

        path = opts["logging_path"]
        user_agent = f"{USER_AGENT}/{run_id}/logging"
        servers = {
            v: Gunicorn(
                root=root, workers=opts["workers"], env=server_env(debug=opts["debug"], NEXUS_REQUEST_LOGGING=v)
            )
            for v in variants
        }
        flusher = Flusher(root=root, env=server_env(debug=opts["debug"]))
        pool = None
        try:
            flusher.start()
            for variant, server in servers.items():
                self.stdout.write(
                    f"starting gunicorn with NEXUS_REQUEST_LOGGING={variant} "
                    f"({opts['workers']} sync workers) on {HOST}:{server.port}"
                )
                server.start()
            for variant, server in servers.items():
                self._check_health(server)
                code, payload = http_get(server.port, path, timeout=30)
                if not 200 <= code < 300:
                    raise CommandError(f"GET {path} answered {code} with logging {variant}: {payload[:200]!r}")
            assert flusher.proc is not None  # started above
            self.stdout.write(f"flushing with `manage.py flush_request_logs --loop` (pid {flusher.proc.pid})")

            connections.close_all()
            pool = multiprocessing.get_context("spawn").Pool(opts["concurrency"], initializer=client_init)
            rounds = self._alternate(pool, {v: (s.port, path) for v, s in servers.items()}, opts, user_agent)
            rows = {v: summarise_rounds(path, rounds[v]) for v in variants}
            ratios = {v: paired_ratio(rounds[v], rounds["off"]) for v in variants if v != "off"}

            zero_loss = None
            if opts["zero_loss"] and "on" in servers:
                zero_loss = self._zero_loss(pool, servers["on"], flusher, path, opts, run_id)
            return {"path": path, "variants": rows, "ratio_over_off": ratios, "zero_loss": zero_loss}
        finally:
            stop_all(pool, *servers.values(), flusher)
            self.stdout.write("gunicorn servers and the flusher stopped")

    def _zero_loss(self, pool, server: Gunicorn, flusher: Flusher, path: str, opts, run_id: str) -> dict:
        """N requests, a graceful stop, a last flush: the rows those requests left must number exactly N."""
        from django.db import close_old_connections

        from nexus_backend.tracking import flusher as request_log_flusher
        from nexus_backend.tracking.models import RequestLog

        requests = opts["zero_loss"]
        user_agent = f"{USER_AGENT}/{run_id}/zero-loss"
        self.stdout.write(f"zero-loss check: {requests:,} requests to the logging-on server, then SIGTERM")
        sent = run_round(pool, server.port, path, requests, opts["concurrency"], user_agent, None)
        stop_started = time.monotonic()
        graceful = server.stop()
        stopped_in = time.monotonic() - stop_started
        flusher_clean = flusher.stop()  # SIGTERM: it makes a last pass before exiting
        close_old_connections()
        final = request_log_flusher.flush()  # anything that arrived after the flusher's last pass
        rows = RequestLog.objects.filter(user_agent=user_agent).count()
        return {
            "requests": requests,
            "answered_2xx": sent["ok"],
            "errors": sent["errors"],
            "graceful_stop": graceful,
            "stop_s": round(stopped_in, 2),
            "flusher_stopped_cleanly": flusher_clean,
            "records_in_final_flush": final.records,
            "rows": rows,
            "exact": rows == sent["ok"] == requests,
        }

    def _delete_bench_logs(self, run_id: str) -> None:
        """The request logs this run made are measurements, not traffic: remove them (unless --keep-logs).

        The servers were stopped gracefully, so their records are in the stream (or the spool): flush first."""
        import redis
        from django.db import DatabaseError, close_old_connections
        from django.db.models import Q

        from nexus_backend.tracking import flusher
        from nexus_backend.tracking.models import RequestLog

        close_old_connections()
        with contextlib.suppress(DatabaseError, redis.RedisError, OSError):
            flusher.flush()
        with contextlib.suppress(DatabaseError):
            RequestLog.objects.filter(
                Q(user_agent__startswith=f"{USER_AGENT}/{run_id}/") | Q(user_agent=f"{USER_AGENT}/setup")
            ).delete()

    @staticmethod
    def _ratio(endpoints: dict) -> dict | None:
        api, bare = endpoints.get("api"), endpoints.get("bare")
        if not api or not bare or "skipped" in api or "skipped" in bare:
            return None
        # Paired per round (both ran in the same round, side by side), then the median across rounds.
        return paired_ratio(api["rounds"], bare["rounds"])

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
        table = TextTable(
            [
                ("server", 12, "<"),
                ("path", 14, "<"),
                ("req/s", 9, ">"),
                ("p50 ms", 9, ">"),
                ("p95 ms", 9, ">"),
                ("ok", 7, ">"),
                ("errors", 7, ">"),
            ]
        )
        lines = [
            "",
            f"Nexus bench  {result['timestamp']}  ({s['rounds']} rounds x {s['requests_per_round']} requests "
            f"per server, {s['concurrency']} clients, gunicorn {s['gunicorn_workers']} sync workers, "
            f"{machine['cpu_count']} CPUs, services: {machine['service_mode']})",
        ]

        def add_rows(rows: dict, label) -> None:
            lines.extend(["", *table.head()])
            for name, row in rows.items():
                if "skipped" in row:
                    lines.append(f"  {label(name):<12} {row['path']:<14} skipped: {row['skipped']}")
                    continue
                rps, p50, p95 = fmt(row["requests_per_s"], 1), fmt(row["p50_ms"], 2), fmt(row["p95_ms"], 2)
                errors = sum(row["errors"].values())
                lines.append(table.row(label(name), row["path"], rps, p50, p95, row["ok"], errors))
                if row["errors"]:
                    lines.append(f"  {'':<12} errors: {row['errors']}")

        if result["endpoints"]:
            add_rows(result["endpoints"], lambda name: name)
            lines.append("")
            ratio = result["ratio_api_over_bare"]
            if ratio:
                lines.append(
                    f"  api / bare: throughput x{ratio['throughput']:.3f}, "
                    f"median latency x{ratio['p50_latency']:.2f}  (medians of per-round ratios)"
                )
            else:
                lines.append("  api / bare: n/a (both rows are needed)")

        logging = result.get("logging")
        if logging:
            add_rows(logging["variants"], lambda name: f"logging {name}")
            lines.append("")
            for variant, ratio in logging["ratio_over_off"].items():
                if ratio:
                    rounds = ", ".join(f"{r:.3f}" for r in ratio["per_round_throughput"])
                    lines.append(
                        f"  logging {variant} / off: throughput x{ratio['throughput']:.3f}, median latency "
                        f"x{ratio['p50_latency']:.2f}  (per round: {rounds})"
                    )
            zero = logging.get("zero_loss")
            if zero:
                verdict = "exact" if zero["exact"] else "NOT EXACT"
                lines.append(
                    f"  zero loss: {zero['requests']:,} requests, {zero['answered_2xx']:,} answered 2xx, graceful "
                    f"stop {'yes' if zero['graceful_stop'] else 'NO'} ({zero['stop_s']:.1f} s), "
                    f"RequestLog rows: {zero['rows']:,}  -> {verdict}"
                )

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
        publish(result, name="bench", started=started, options=opts, write=self.stdout.write)
