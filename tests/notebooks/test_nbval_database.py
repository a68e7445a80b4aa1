"""nbval's kernels run against the test database (``notebooks/conftest.py``), never the development one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import psycopg2
from django.conf import settings
from django.db import connection

from .helpers import write_notebook

PROBE_DB = "nexus_nbval_probe"  # the "development" database of the inner pytest: never created, never touched
CELLS = [
    "import os\n\nimport nexus_lab.notebooks.bootstrap as nb\nfrom django.db import connection",
    "print(connection.settings_dict['NAME'], os.environ.get('NEXUS_DB_NAME'))",
    f"assert connection.settings_dict['NAME'] == os.environ['NEXUS_DB_NAME'] == 'test_{PROBE_DB}'",
    "from django.contrib.auth import get_user_model\n"
    "get_user_model().objects.create(username='nbval-db-probe')  # the test database is migrated: auth_user exists",
]


def _databases() -> set[str]:
    db = connection.settings_dict
    with (
        psycopg2.connect(
            dbname="postgres", user=db["USER"] or None, host=db["HOST"] or None, port=db["PORT"] or None
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT datname FROM pg_database")
        return {row[0] for row in cur.fetchall()}


def test_a_notebook_under_nbval_runs_on_a_migrated_test_database_made_and_dropped_for_it(tmp_path):
    """The conftest, copied beside a probe notebook, in a pytest of its own that has no other test (so the conftest
    makes the test database itself): the kernel's database is ``test_<development name>``, migrated, and gone after."""
    shutil.copy(settings.BASE_DIR / "notebooks" / "conftest.py", tmp_path / "conftest.py")
    write_notebook(tmp_path, "probe.ipynb", parameters=None, cells=CELLS)
    env = {**os.environ, "NEXUS_DB_NAME": PROBE_DB}  # the inner pytest's development database: a name of its own
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q"]
    command += ["--ds=nexus_backend.settings", "--rootdir", str(tmp_path), "-c", os.devnull, "probe.ipynb"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout
    assert not {PROBE_DB, f"test_{PROBE_DB}"} & _databases()  # dropped at the end; the other never existed
