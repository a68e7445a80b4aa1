"""The first cell of every notebook: ``import nexus_lab.notebooks.bootstrap as nb``.

Importing this module makes a Jupyter kernel (or papermill, or nbval) a Django process of this project:

- finds the project root (the folder with ``manage.py``) and puts it on ``sys.path``;
- sets ``DJANGO_SETTINGS_MODULE`` and ``DJANGO_ALLOW_ASYNC_UNSAFE=true`` (Jupyter runs an event loop, which
  makes Django refuse ORM calls from cells otherwise);
- calls ``django.setup()`` (which starts the embedded PostgreSQL/Redis when no service URLs are configured);
- sets a quiet, reproducible plotting and display style.

It exposes what notebooks need: :data:`PROJECT_ROOT`, :data:`DATA_DIR`, :data:`REPORTS_DIR`,
:func:`sqlalchemy_engine` (for ``pandas.read_sql``), :func:`setup_matplotlib`, :func:`seed_everything` and
:func:`headline` (a figure the run found, collected into ``reports/manifest.json``).
Importing it twice is harmless.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import sys
import warnings
from pathlib import Path

__all__ = [
    "PROJECT_ROOT",
    "DATA_DIR",
    "NOTEBOOKS_DIR",
    "REPORTS_DIR",
    "sqlalchemy_engine",
    "sqlalchemy_url",
    "setup_matplotlib",
    "seed_everything",
    "headline",
    "HEADLINE_MIME",
]


def _find_project_root() -> Path:
    """``NEXUS_PROJECT_ROOT`` if set, else the nearest folder with ``manage.py`` above this file or cwd."""
    explicit = os.environ.get("NEXUS_PROJECT_ROOT")
    if explicit:
        return Path(explicit).resolve()
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for candidate in (start, *start.parents):
            if (candidate / "manage.py").is_file() and (candidate / "nexus_backend").is_dir():
                return candidate
    raise RuntimeError("cannot find the Nexus project root (a folder with manage.py); set NEXUS_PROJECT_ROOT to it")


PROJECT_ROOT: Path = _find_project_root()
DATA_DIR: Path = PROJECT_ROOT / "data"
NOTEBOOKS_DIR: Path = PROJECT_ROOT / "notebooks"
REPORTS_DIR: Path = PROJECT_ROOT / "reports"

if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus_backend.settings")
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
# Notebook outputs should not change with log chatter; set NEXUS_LOG_LEVEL=INFO to see the package's logs.
os.environ.setdefault("NEXUS_LOG_LEVEL", "WARNING")

import django  # noqa: E402  (the environment above must be set first)

django.setup()

# Third-party noise that would land on stderr in executed notebooks (and so in reports and nbval diffs).
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(jupyter_client|zmq|ipykernel)\..*")
logging.getLogger("matplotlib").setLevel(logging.WARNING)
# Django logs every 4xx answer as a warning; notebooks provoke 400/401/409 on purpose to show them.
logging.getLogger("django.request").setLevel(logging.ERROR)


def sqlalchemy_url(alias: str = "default", *, database: dict | None = None):
    """A SQLAlchemy URL for the Django database ``alias`` (same server, user and database as the ORM), or for
    a ``database`` dict shaped like an entry of ``settings.DATABASES``.

    The embedded PostgreSQL listens on a Unix socket only: its ``HOST`` is a directory, which SQLAlchemy takes
    as the ``host`` query argument (``postgresql+psycopg2://postgres@/nexus?host=/path/to/socket-dir``).
    """
    from sqlalchemy.engine import URL

    if database is None:
        from django.conf import settings

        database = settings.DATABASES[alias]
    host = database.get("HOST") or None
    port = int(database["PORT"]) if database.get("PORT") else None
    query: dict[str, str] = {}
    if host and host.startswith("/"):
        query["host"] = host
        host, port = None, None
    for key in ("sslmode", "connect_timeout", "options", "application_name"):
        value = (database.get("OPTIONS") or {}).get(key)
        if value is not None:
            query[key] = str(value)
    return URL.create(
        "postgresql+psycopg2",
        username=database.get("USER") or None,
        password=database.get("PASSWORD") or None,
        host=host,
        port=port,
        database=database["NAME"],
        query=query,
    )


@functools.cache
def sqlalchemy_engine(alias: str = "default"):
    """A pooled SQLAlchemy engine on the Django database: ``pandas.read_sql(sql, nb.sqlalchemy_engine())``.

    pandas warns (on stderr) when handed a raw DB-API connection; an engine keeps notebook output clean.
    """
    from sqlalchemy import create_engine

    return create_engine(sqlalchemy_url(alias), pool_pre_ping=True, pool_size=2, max_overflow=2)


def seed_everything(seed: int) -> random.Random:
    """Seed Python's and NumPy's global generators; return a private ``random.Random(seed)`` to draw from."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # numpy comes with pandas; this only guards odd environments
        pass
    return random.Random(seed)


#: The output type a headline figure is displayed with; the report runner reads it back from the executed notebook.
HEADLINE_MIME = "application/vnd.nexus.headline+json"
#: How far a figure may drift from the reference run before the index marks it (relative), unless told otherwise.
DEFAULT_TOLERANCE = 0.25


def headline(name: str, value: float, *, tolerance: float = DEFAULT_TOLERANCE, unit: str = "") -> None:
    """Record one headline figure of this run (what the notebook exists to find) and show it.

    The figure goes into the cell's output under :data:`HEADLINE_MIME` (with a plain-text line for readers);
    ``manage.py run_notebooks`` collects every one into ``manifest.json`` and shows it in ``reports/index.html``
    beside the reference run's value, marked when they differ by more than ``tolerance`` (relative: 0.25 is 25 %;
    0 for counts that a seeded run reproduces exactly). Returns ``value``."""
    import math

    from IPython.display import display

    if not name.isidentifier():
        raise ValueError(f"headline name must be an identifier like hit_ratio, got {name!r}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"headline {name} must be a finite number, got {value!r}")
    if tolerance < 0:
        raise ValueError(f"headline {name}: tolerance must be >= 0, got {tolerance!r}")
    shown = f"{value:,}" if isinstance(value, int) else f"{value:.4g}"
    record = {"name": name, "value": value, "tolerance": tolerance, "unit": unit}
    display({HEADLINE_MIME: record, "text/plain": f"headline {name} = {shown}{(' ' + unit) if unit else ''}"}, raw=True)


def setup_matplotlib() -> None:
    """One readable, reproducible style for every chart (PNG, fixed size and dpi, no top/right spines)."""
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.figsize": (8.0, 4.0),
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "savefig.bbox": "tight",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "axes.grid.axis": "y",
            "grid.alpha": 0.3,
            "axes.titlesize": 12,
            "axes.titleweight": "bold",
            "axes.labelsize": 10,
            "font.size": 10,
            "legend.frameon": False,
            "svg.hashsalt": "nexus",  # stable ids if someone switches to SVG output
        }
    )


def _setup_pandas() -> None:
    import pandas as pd

    pd.set_option("display.max_columns", 20)
    pd.set_option("display.width", 120)
    pd.set_option("display.max_colwidth", 60)


setup_matplotlib()
_setup_pandas()
