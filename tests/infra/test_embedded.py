"""The embedded mode, started from nothing in a fresh state folder, by real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "NEXUS_DB_NAME")


def _env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env["NEXUS_STATE_DIR"] = str(state)
    env.pop("XDG_RUNTIME_DIR", None)
    return env


def manage(state: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_env(state),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def shell(state: Path, code: str) -> str:
    return manage(state, "shell", "-c", code).stdout.strip()


@pytest.fixture
def state(tmp_path):
    folder = tmp_path / "state"
    yield folder
    manage(folder, "embedded", "stop", check=False)


def _pids(state: Path) -> tuple[str, str]:
    out = manage(state, "embedded", "status").stdout
    pg = [line for line in out.splitlines() if line.startswith("embedded postgres")][0]
    rd = [line for line in out.splitlines() if line.startswith("embedded redis")][0]
    return pg, rd


def test_started_from_nothing_then_reused_by_concurrent_processes(state):
    assert not state.exists()
    # Four processes at once (think web, worker, beat, a kernel) on an empty state folder.
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: manage(state, "doctor", check=False), range(4)))
    for proc in results:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "mode: embedded" in proc.stdout
        assert proc.stdout.count("ok  ") == 3, proc.stdout
    first = _pids(state)
    assert "running (pid" in first[0] and "running (pid" in first[1]
    manage(state, "doctor")
    assert _pids(state) == first, "a second start must reuse the running servers, not start new ones"

    # exactly one postmaster for this state folder, and one redis-server on the remembered port
    ps = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    assert len([p for p in ps if "postgres -D" in p and str(state) in p]) == 1
    port = (state / "redis" / "port").read_text().strip()
    assert len([p for p in ps if "redis-server" in p and p.endswith(f":{port}")]) == 1


def test_data_survives_stop_and_restart(state):
    shell(
        state,
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('CREATE TABLE keepme (x int)'); c.execute('INSERT INTO keepme VALUES (42)')\n"
        "from django_redis import get_redis_connection\n"
        "get_redis_connection().set('nexus-test-keepme', 'yes')",
    )
    assert "stopped" in manage(state, "embedded", "stop").stdout
    assert "not running" in manage(state, "embedded", "status").stdout
    # the next command brings both back with their data
    out = shell(
        state,
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('SELECT x FROM keepme'); print(c.fetchone()[0])\n"
        "from django_redis import get_redis_connection\n"
        "print(get_redis_connection().get('nexus-test-keepme').decode())",
    )
    assert out.splitlines()[-2:] == ["42", "yes"]


def test_a_handle_list_left_empty_by_a_killed_process_does_not_stop_the_next_command(state):
    """pgserver rewrites ``pgdata/.handle_pids.json`` in place; a process killed mid-write leaves it empty, and
    pgserver then fails every later start with a JSON error (seen on this machine after killed benchmark clients).
    The next command repairs it and works, with the data still there."""
    shell(state, "from django.db import connection\nconnection.cursor().execute('CREATE TABLE keepme (x int)')")
    handles = state / "pgdata" / ".handle_pids.json"
    for broken in ("", "[12, 3"):
        handles.write_text(broken)
        out = shell(
            state,
            "from django.db import connection\n"
            "with connection.cursor() as c:\n"
            "    c.execute(\"SELECT to_regclass('keepme') IS NOT NULL\"); print(c.fetchone()[0])",
        )
        assert out.splitlines()[-1] == "True"
        assert isinstance(json.loads(handles.read_text()), list)


def test_unreachable_service_url_is_one_line_error(tmp_path):
    env = _env(tmp_path / "unused")
    env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/nexus"
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"
    proc = subprocess.run(
        [sys.executable, "manage.py", "migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: cannot use the database:"), proc.stderr
    assert "DATABASE_URL" in proc.stderr

    doctor = subprocess.run(
        [sys.executable, "manage.py", "doctor"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert doctor.returncode == 1
    assert "FAIL database" in doctor.stdout and "FAIL cache" in doctor.stdout
    assert "Traceback" not in doctor.stderr


def test_non_postgres_database_url_is_refused(tmp_path):
    env = _env(tmp_path / "unused")
    env["DATABASE_URL"] = "sqlite:///db.sqlite3"
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "DATABASE_URL must be a PostgreSQL URL" in proc.stderr
    assert "Traceback" not in proc.stderr
