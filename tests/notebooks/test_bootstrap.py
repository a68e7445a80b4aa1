"""The notebook bootstrap: project paths, and a SQLAlchemy engine on the same database as Django."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from sqlalchemy import text

import nexus_lab.notebooks.bootstrap as nb


def test_the_url_follows_django_settings():
    db = settings.DATABASES["default"]
    url = nb.sqlalchemy_url()
    assert url.database == db["NAME"] and url.username == (db.get("USER") or None)


def test_paths_point_into_the_project():
    assert nb.PROJECT_ROOT == Path(settings.BASE_DIR)
    assert (nb.PROJECT_ROOT / "manage.py").is_file()
    assert nb.DATA_DIR == nb.PROJECT_ROOT / "data"
    assert nb.NOTEBOOKS_DIR == nb.PROJECT_ROOT / "notebooks"


def test_url_for_a_unix_socket_directory():
    db = {"NAME": "nexus", "USER": "postgres", "PASSWORD": "", "HOST": "/srv/pg socket", "PORT": ""}
    url = nb.sqlalchemy_url(database=db)
    assert url.host is None and url.port is None
    assert url.query["host"] == "/srv/pg socket"
    assert url.render_as_string(hide_password=False) == (
        "postgresql+psycopg2://postgres@/nexus?host=%2Fsrv%2Fpg+socket"
    )


def test_url_for_a_host_and_port():
    db = {
        "NAME": "polls",
        "USER": "app",
        "PASSWORD": "p@ss:word",
        "HOST": "db.internal",
        "PORT": "5433",
        "OPTIONS": {"sslmode": "require", "connect_timeout": 5},
    }
    url = nb.sqlalchemy_url(database=db)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "app",
        "p@ss:word",
        "db.internal",
        5433,
        "polls",
    )
    assert dict(url.query) == {"sslmode": "require", "connect_timeout": "5"}


@pytest.mark.django_db
def test_pandas_reads_through_the_engine_without_warnings():
    nb.sqlalchemy_engine.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = pd.read_sql(text("SELECT 1 AS one, current_database() AS db"), nb.sqlalchemy_engine())
    assert frame["one"].tolist() == [1]
    assert frame["db"].tolist() == [settings.DATABASES["default"]["NAME"]]
    nb.sqlalchemy_engine().dispose()
    nb.sqlalchemy_engine.cache_clear()


def test_importing_the_bootstrap_is_quiet(tmp_path):
    """What a kernel does in cell 1, from the notebooks' folder: nothing on stderr, even with warnings on."""
    proc = subprocess.run(
        [
            sys.executable,
            "-W",
            "default",
            "-c",
            "import nexus_lab.notebooks.bootstrap as nb; print(nb.DATA_DIR)",
        ],
        cwd=nb.NOTEBOOKS_DIR if nb.NOTEBOOKS_DIR.is_dir() else tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.strip() == str(nb.DATA_DIR)
