"""The packaging files agree with the code: docker-compose.yml, Dockerfile, environment.yml, .env.example and
the CI workflow against the environment variables nexus_backend reads (settings/, infra/ ...), pyproject.toml
and the Makefile.

There is no Docker engine on the development machines, so this checks what can be checked without one
(CI builds the image and runs the compose file). Each check returns a list of problems; the drift tests at the
bottom edit a copy of the project and prove each check notices. No database needed.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]

# Where the environment is read: settings/, infra/ and every other module of the service and the lab.
ENV_SOURCES = ("nexus_backend/**/*.py", "nexus_lab/**/*.py")
BACKING_SERVICES = {"postgres": "postgres:16", "redis": "redis:7", "rabbitmq": "rabbitmq:3-management"}
APP_SERVICES = ("web", "worker", "beat", "jupyter")
SERVICE_URL_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
PUBLISHED_PORTS = {"proxy": 8000, "jupyter": 8888}  # web only through the proxy; tests/security checks binds
PYTHON = "3.11"


# --------------------------------------------------------------------------- what the code reads


def _is_environ(node: ast.AST) -> bool:
    """``os.environ``, ``environ`` or a mapping parameter called ``env`` (services.resolve(env))."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ"
    return isinstance(node, ast.Name) and node.id in ("environ", "env")


def env_names_in(source: str) -> set[str]:
    """Names read through os.environ.get / os.getenv / os.environ[...] / env.get / env_<kind>("NAME")."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args:
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            func = node.func
            if (
                (isinstance(func, ast.Attribute) and func.attr == "get" and _is_environ(func.value))
                or (isinstance(func, ast.Attribute) and func.attr == "getenv")
                or (isinstance(func, ast.Name) and func.id.startswith("env_"))
            ):
                names.add(first.value)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                names.add(node.slice.value)
    return {n for n in names if re.fullmatch(r"[A-Z][A-Z0-9_]*", n)}  # env["x"] may be any dict called env


def settings_env_names(root: Path) -> set[str]:
    names: set[str] = set()
    for pattern in ENV_SOURCES:
        for path in sorted(root.glob(pattern)):
            names |= env_names_in(path.read_text())
    return names


# --------------------------------------------------------------------------- docker-compose.yml


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _published_ports(service: dict) -> set[int]:
    ports = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.add(int(entry.get("published", entry.get("target"))))
        else:
            parts = str(entry).split("/")[0].split(":")
            ports.add(int(parts[-2] if len(parts) > 1 else parts[-1]))
    return ports


def _command(service: dict) -> str:
    cmd = service.get("command") or ""
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


def compose_interpolated(root: Path) -> set[str]:
    text = (root / "docker-compose.yml").read_text()
    return set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


def compose_problems(root: Path) -> list[str]:
    problems: list[str] = []
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    services: dict = compose.get("services") or {}
    read = settings_env_names(root)

    for name in [*BACKING_SERVICES, *APP_SERVICES]:
        if name not in services:
            problems.append(f"service {name!r} is missing")
    for name, image in BACKING_SERVICES.items():
        if name in services and services[name].get("image") != image:
            problems.append(f"service {name!r} should use image {image!r}, not {services[name].get('image')!r}")

    for name, service in services.items():
        check = service.get("healthcheck") or {}
        if check.get("disable") or not check.get("test") or check.get("test") in (["NONE"], "NONE"):
            problems.append(f"service {name!r} has no healthcheck")

    for name in APP_SERVICES:
        service = services.get(name)
        if service is None:
            continue
        env = _environment(service)
        deps = _depends_on(service)
        unknown = sorted(set(env) - read)
        if unknown:
            problems.append(f"{name}: environment sets {unknown}, which nexus_backend never reads")
        for var in SERVICE_URL_VARS:
            if var not in env:
                problems.append(f"{name}: {var} is not set (it would fall back to the embedded services)")
        for var, value in env.items():
            if "://" not in value:
                continue
            host = urlsplit(re.sub(r"\$\{[^}]*\}", "x", value)).hostname  # a ${PASSWORD:?...} inside the URL
            if host not in services:
                problems.append(f"{name}: {var}={value} points at {host!r}, which is not a compose service")
            elif deps.get(host) != "service_healthy":
                problems.append(f"{name}: uses {host!r} ({var}) without depends_on condition: service_healthy")
        for backing in BACKING_SERVICES:
            if deps.get(backing) != "service_healthy":
                problems.append(f"{name}: depends_on {backing!r} must have condition: service_healthy")

    for name, port in PUBLISHED_PORTS.items():
        if name in services and port not in _published_ports(services[name]):
            problems.append(f"{name}: port {port} is not published")

    commands = {name: _command(services.get(name) or {}) for name in APP_SERVICES}
    web = commands["web"]
    if "migrate" not in web or "gunicorn" not in web or web.index("migrate") > web.index("gunicorn"):
        problems.append(f"web must run migrate, then gunicorn: {web!r}")
    if "nexus_backend.wsgi:application" not in web:
        problems.append("web does not serve nexus_backend.wsgi:application")
    for name, words in {
        "worker": ("celery", "-A nexus_backend", "worker"),
        "beat": ("celery", "-A nexus_backend", "beat"),
    }.items():
        if not all(w in commands[name] for w in words):
            problems.append(f"{name} command should be `celery -A nexus_backend {name}`: {commands[name]!r}")
    if "jupyter lab" not in commands["jupyter"] or "8888" not in commands["jupyter"]:
        problems.append(f"jupyter should run `jupyter lab` on 8888: {commands['jupyter']!r}")
    mounts = [str(v) for v in (services.get("jupyter") or {}).get("volumes") or []]
    if not any(m.split(":")[0].rstrip("/") in ("./notebooks", "notebooks") for m in mounts):
        problems.append("jupyter does not mount ./notebooks")
    return problems


# --------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions(root: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (root / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _exec_form(value: str) -> list[str]:
    return json.loads(value) if value.startswith("[") else shlex.split(value)


def dockerfile_problems(root: Path) -> list[str]:
    if not (root / "Dockerfile").exists():
        return ["Dockerfile is missing"]
    problems: list[str] = []
    inst = dockerfile_instructions(root)
    froms = [v for k, v in inst if k == "FROM"]
    bases: dict[str, str] = {}  # stage name -> the image it starts from (FROM base AS web: web -> base's image)
    for value in froms:
        image, *rest = value.split()
        if len(rest) == 2 and rest[0].lower() == "as":
            bases[rest[1]] = bases.get(image, image)
    final = bases.get(froms[-1].split()[0], froms[-1].split()[0]) if froms else ""
    if not final.startswith(f"python:{PYTHON}-slim"):
        problems.append(f"the final stage should start FROM python:{PYTHON}-slim, got {froms}")
    users = [v for k, v in inst if k == "USER"]
    if not users or any(user.split(":")[0] in ("root", "0") for user in users):  # every stage: service and lab
        problems.append("the image must run as a non-root USER")
    runs = " ".join(v for k, v in inst if k == "RUN")
    copies = " ".join(v for k, v in inst if k == "COPY")
    if "pyproject.toml" not in runs + copies or "pip install" not in runs:
        problems.append("the image should pip install the project from pyproject.toml")
    if "collectstatic" not in runs:
        problems.append("the image should run collectstatic")
    checks = [v for k, v in inst if k == "HEALTHCHECK"]
    if not checks or "/health/" not in checks[-1]:
        problems.append("HEALTHCHECK on /health/ is missing")
    cmds = [v for k, v in inst if k == "CMD"]
    cmd = _exec_form(cmds[-1]) if cmds else []
    if not cmd or cmd[0] != "gunicorn" or "nexus_backend.wsgi:application" not in cmd:
        problems.append(f"CMD should be gunicorn nexus_backend.wsgi:application, got {cmd}")
    elif not any(arg.endswith(":8000") for arg in cmd):
        problems.append(f"CMD should bind port 8000, got {cmd}")
    ignore = (root / ".dockerignore").read_text().split() if (root / ".dockerignore").exists() else []
    for must in (".git", ".venv", ".env", ".nexus"):
        if must not in ignore:
            problems.append(f".dockerignore should exclude {must}")
    return problems


# --------------------------------------------------------------------------- environment.yml vs pyproject


def _requirements(lines: list[str], where: str, problems: list[str]) -> dict[str, Requirement]:
    reqs: dict[str, Requirement] = {}
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            problems.append(f"{where}: cannot parse {line!r}: {exc}")
            continue
        reqs[canonicalize_name(req.name)] = req
    return reqs


def pyproject(root: Path) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]


def environment_yml_problems(root: Path) -> list[str]:
    problems: list[str] = []
    env = yaml.safe_load((root / "environment.yml").read_text())
    deps = env.get("dependencies") or []
    conda = [str(d) for d in deps if not isinstance(d, dict)]
    pip_lists = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    pythons = [d for d in conda if re.match(r"python\s*[=<>]", d)]
    if pythons != [f"python={PYTHON}"]:
        problems.append(f"environment.yml should pin python={PYTHON}, has {pythons}")
    if "pip" not in conda:
        problems.append("environment.yml should list pip among the conda dependencies")
    if len(pip_lists) != 1:
        return [*problems, "environment.yml needs exactly one pip: section"]
    pip_lines = [str(line) for line in pip_lists[0] if not str(line).startswith("-")]

    project = pyproject(root)
    extras = project.get("optional-dependencies", {})
    declared = [*project["dependencies"], *extras.get("lab", []), *extras.get("dev", [])]
    declared = [d for d in declared if canonicalize_name(Requirement(d).name) != canonicalize_name(project["name"])]
    want = _requirements(declared, "pyproject.toml", problems)
    have = _requirements(pip_lines, "environment.yml", problems)
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    if missing:
        problems.append(f"in pyproject.toml but not environment.yml: {missing}")
    if extra:
        problems.append(f"in environment.yml but not pyproject.toml: {extra}")
    for name in sorted(set(want) & set(have)):
        w, h = want[name], have[name]
        if (w.specifier, w.extras, w.marker and str(w.marker)) != (
            h.specifier,
            h.extras,
            h.marker and str(h.marker),
        ):
            problems.append(f"{name}: pyproject.toml says {str(w)!r}, environment.yml says {str(h)!r}")
    return problems


# --------------------------------------------------------------------------- .env.example


def env_example_names(root: Path) -> set[str]:
    text = (root / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def env_example_problems(root: Path) -> list[str]:
    problems: list[str] = []
    documented = env_example_names(root)
    read = settings_env_names(root)
    missing = sorted(read - documented)
    if missing:
        problems.append(f".env.example does not document {missing} (read in nexus_backend)")
    stale = sorted(documented - read - compose_interpolated(root))
    if stale:
        problems.append(f".env.example documents {stale}, which nothing reads")
    undocumented = sorted(compose_interpolated(root) - documented)
    if undocumented:
        problems.append(f"docker-compose.yml interpolates {undocumented}, not in .env.example")
    gitignore = (root / ".gitignore").read_text().split()
    if ".env" not in gitignore:
        problems.append(".gitignore must ignore .env")
    return problems


# --------------------------------------------------------------------------- CI workflow


def make_targets(root: Path) -> set[str]:
    return set(re.findall(r"^([A-Za-z_][\w-]*):", (root / "Makefile").read_text(), flags=re.MULTILINE))


def ci_problems(root: Path) -> list[str]:
    problems: list[str] = []
    wf = yaml.safe_load((root / ".github/workflows/ci.yml").read_text())
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    triggers = [triggers] if isinstance(triggers, str) else list(triggers or [])
    for event in ("push", "pull_request"):
        if event not in triggers:
            problems.append(f"CI does not run on {event}")
    jobs: dict = wf.get("jobs") or {}
    targets = make_targets(root)

    def steps_running(pattern: str):
        """(job name, job, step) for every step whose `run` matches the regular expression."""
        return [
            (job_name, job, step)
            for job_name, job in jobs.items()
            for step in job.get("steps") or []
            if re.search(pattern, str(step.get("run", "")))
        ]

    for _job_name, _job, step in steps_running(r"\bmake\s"):
        for target in re.findall(r"make\s+([A-Za-z_][\w-]*)", step["run"]):
            if target not in targets:
                problems.append(f"CI runs `make {target}`, which the Makefile does not define")

    tests = steps_running(r"\bmake test\b(?!-)")
    reports = steps_running(r"\bmake reports\b(?!-)")
    if not tests:
        problems.append("no CI step runs `make test`")
    if not reports:
        problems.append("no CI step runs `make reports`")
    for job_name, job, step in tests:
        services = job.get("services") or {}
        for name, image in (("postgres", "postgres:16"), ("redis", "redis:7"), ("rabbitmq", "rabbitmq:3")):
            found = [s for s in services.values() if str(s.get("image", "")).startswith(image)]
            if not found:
                problems.append(f"job {job_name}: no {image} service container")
            elif "--health-cmd" not in str(found[0].get("options", "")):
                problems.append(f"job {job_name}: the {name} service has no --health-cmd")
        env = {**(wf.get("env") or {}), **(job.get("env") or {}), **(step.get("env") or {})}
        for var in SERVICE_URL_VARS:
            if not env.get(var):
                problems.append(f"job {job_name}: `make test` runs without {var}")
        pythons = [
            str((s.get("with") or {}).get("python-version"))
            for s in job.get("steps") or []
            if str(s.get("uses", "")).startswith("actions/setup-python")
        ]
        if pythons != [PYTHON]:
            problems.append(f"job {job_name}: python-version should be {PYTHON}, got {pythons}")
    # The RabbitMQ fault tests start nodes of their own as the rabbitmq user: the runner needs the server's binaries
    # and root for them, or they skip (harness.rabbitmq_missing).
    if not steps_running(r"apt-get install[^\n]*\brabbitmq-server\b"):
        problems.append("CI does not install rabbitmq-server: the RabbitMQ fault tests would skip")
    if not steps_running(r"\bsudo\b[^\n]*\bmake faults\b"):
        problems.append("no CI step runs `make faults` as root: the RabbitMQ fault tests would skip")
    for job_name, job, step in reports:
        env = {**(wf.get("env") or {}), **(job.get("env") or {}), **(step.get("env") or {})}
        set_vars = [var for var in SERVICE_URL_VARS if env.get(var)]
        if set_vars:
            problems.append(f"job {job_name}: `make reports` should use the embedded services, but sets {set_vars}")
        uploads = [
            s
            for s in job.get("steps") or []
            if str(s.get("uses", "")).startswith("actions/upload-artifact")
            and "reports" in str((s.get("with") or {}).get("path", ""))
        ]
        if not uploads:
            problems.append(f"job {job_name}: reports/ is not uploaded as an artifact")
    if not steps_running(r"\bdocker build\s"):
        problems.append("no CI job builds the Docker image (docker build)")
    return problems


# --------------------------------------------------------------------------- the checks, on the real project


def _report(problems: list[str]) -> str:
    return "\n".join(["", *problems])


def test_env_parser_finds_what_settings_read():
    read = settings_env_names(ROOT)
    assert {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "NEXUS_ENV", "CORS_ALLOWED_ORIGINS"} <= read
    assert {
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "CELERY_RESULT_BACKEND",
        "NEXUS_STATE_DIR",
    } <= read
    # One from each module of the settings package that reads the environment (settings/<module>.py).
    assert {
        "NEXUS_REQUEST_LOGGING",  # tracking.py
        "POLLS_RESULTS_STRATEGY",  # polls.py
        "NEXUS_GRAPHIQL",  # graphql.py
        "NEXUS_LOG_FORMAT",  # logging.py
        "NEXUS_RATE_LOGIN_IP",  # drf.py
        "NEXUS_CACHE_INVALIDATION",  # caching.py
        "NEXUS_OUTBOX_RELAY_SECONDS",  # celery.py
        "NEXUS_STATIC_ROOT",  # base.py
    } <= read


def test_compose_services_and_environment_match_settings():
    problems = compose_problems(ROOT)
    assert not problems, _report(problems)


def test_dockerfile():
    problems = dockerfile_problems(ROOT)
    assert not problems, _report(problems)


def test_python_version_agrees_with_requires_python():
    assert SpecifierSet(pyproject(ROOT)["requires-python"]).contains(PYTHON)


def test_environment_yml_matches_pyproject():
    problems = environment_yml_problems(ROOT)
    assert not problems, _report(problems)


def test_env_example_documents_every_variable():
    problems = env_example_problems(ROOT)
    assert not problems, _report(problems)


def test_ci_workflow():
    problems = ci_problems(ROOT)
    assert not problems, _report(problems)


# --------------------------------------------------------------------------- drift: each check notices

COPIED = [
    "docker-compose.yml",
    "Dockerfile",
    ".dockerignore",
    "environment.yml",
    "pyproject.toml",
    ".env.example",
    ".gitignore",
    "Makefile",
    ".github/workflows/ci.yml",
    "nexus_backend",
    "nexus_lab",
]

CHECKS = {
    "compose": compose_problems,
    "dockerfile": dockerfile_problems,
    "environment": environment_yml_problems,
    "env_example": env_example_problems,
    "ci": ci_problems,
}

DRIFTS = [
    # (check, file, text to replace, replacement, a word the problem must mention)
    (
        "compose",
        "docker-compose.yml",
        "@redis:6379/0",
        "@cache:6379/0",
        "cache",
    ),
    ("compose", "docker-compose.yml", "    LOG_LEVEL:", "    NEXUS_TYPO: x\n    LOG_LEVEL:", "NEXUS_TYPO"),
    ("compose", "docker-compose.yml", "    CELERY_BROKER_URL: amqp", "    BROKER: amqp", "CELERY_BROKER_URL"),
    ("compose", "docker-compose.yml", '      - "127.0.0.1:8888:8888"', '      - "127.0.0.1:8889:8888"', "8888"),
    ("compose", "docker-compose.yml", "  jupyter:\n", "  notebook:\n", "jupyter"),
    ("compose", "docker-compose.yml", "image: postgres:16", "image: postgres:15", "postgres:16"),
    (
        "compose",
        "docker-compose.yml",
        "    healthcheck:\n      # /api answers without a token",
        "    x-healthcheck:\n      # /api answers without a token",
        "jupyter",
    ),
    (
        "compose",
        "docker-compose.yml",
        "    rabbitmq:\n      condition: service_healthy",
        "    rabbitmq:\n      condition: service_started",
        "rabbitmq",
    ),
    ("compose", "nexus_backend/settings/security.py", 'env_bool("DEBUG"', 'env_bool("NEXUS_DEBUG"', "DEBUG"),
    ("dockerfile", "Dockerfile", "HEALTHCHECK", "# HEALTHCHECK", "HEALTHCHECK"),
    (
        "dockerfile",
        "Dockerfile",
        'CMD ["gunicorn", "nexus_backend.wsgi',
        'CMD ["gunicorn", "other.wsgi',
        "CMD",
    ),
    ("dockerfile", "Dockerfile", "USER nexus", "USER root", "non-root"),
    ("dockerfile", "Dockerfile", "FROM python:3.11-slim", "FROM python:3.12-slim", "3.11"),
    ("environment", "pyproject.toml", '    "tqdm>=4.66",', '    "tqdm>=4.66",\n    "httpx>=0.27",', "httpx"),
    ("environment", "environment.yml", "- celery>=5.4", "- celery>=5.3", "celery"),
    ("environment", "environment.yml", "      - ruff>=0.6\n", "", "ruff"),
    (
        "env_example",
        "nexus_backend/settings/base.py",
        "NEXUS_PROJECT_ROOT = BASE_DIR",
        'NEXUS_PROJECT_ROOT = BASE_DIR\nX = os.environ.get("NEXUS_NEW_SETTING", "")',
        "NEXUS_NEW_SETTING",
    ),
    ("env_example", ".env.example", "# JWT_REFRESH_DAYS=7\n", "", "JWT_REFRESH_DAYS"),
    ("env_example", ".env.example", "JUPYTER_TOKEN=\n", "OLD_THING=\n", "OLD_THING"),
    ("ci", ".github/workflows/ci.yml", "run: make reports", "run: make report", "make reports"),
    ("ci", ".github/workflows/ci.yml", "run: make test", "run: make tests", "make tests"),
    (
        "ci",
        ".github/workflows/ci.yml",
        "      - name: Notebook reports (embedded services)\n",
        "      - name: Notebook reports (embedded services)\n"
        "        env:\n          DATABASE_URL: postgres://postgres@127.0.0.1/nexus\n",
        "embedded",
    ),
    ("ci", ".github/workflows/ci.yml", "image: rabbitmq:3", "image: rabbitmq:4", "rabbitmq"),
    ("ci", ".github/workflows/ci.yml", "docker build -t", "docker buildx bake -t", "docker build"),
]


@pytest.fixture
def project_copy(tmp_path) -> Path:
    for rel in COPIED:
        src, dst = ROOT / rel, tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    return tmp_path


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_an_unchanged_copy_passes(project_copy, check):
    assert CHECKS[check](project_copy) == []


@pytest.mark.parametrize(
    ("check", "rel", "old", "new", "mentions"),
    DRIFTS,
    ids=[f"{d[0]}:{d[1]}:{d[4]}" for d in DRIFTS],
)
def test_drift_is_caught(project_copy, check, rel, old, new, mentions):
    path = project_copy / rel
    text = path.read_text()
    assert old in text, f"the drift test is stale: {old!r} is no longer in {rel}"
    path.write_text(text.replace(old, new, 1))
    problems = CHECKS[check](project_copy)
    assert problems, f"editing {rel} ({old!r} -> {new!r}) was not noticed"
    assert any(mentions in p for p in problems), _report(problems)


def test_package_names_are_compared_normalised(project_copy):
    path = project_copy / "environment.yml"
    text = path.read_text()
    assert "- django-redis>=5.4" in text
    path.write_text(text.replace("- django-redis>=5.4", "- Django_Redis >= 5.4"))
    assert environment_yml_problems(project_copy) == []


def test_make_lab_binds_to_loopback_and_starts_as_root():
    """JupyterLab runs code for whoever reaches it: 127.0.0.1 only. Containers and cloud workspaces run as root,
    where Jupyter refuses to start without --allow-root."""
    out = subprocess.run(
        ["make", "-n", "lab", "STAMP=", "VENV=/nonexistent"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    [command] = [line for line in out.splitlines() if "jupyter lab" in line]
    assert "--ip=127.0.0.1" in command and "--ip=0.0.0.0" not in command
    assert ("--allow-root" in command) == (os.geteuid() == 0)


def test_every_folder_of_python_modules_is_a_package_pip_installs():
    """setuptools' package finder (``[tool.setuptools.packages.find]``) skips a folder without ``__init__.py``:
    ``pip install .`` would deploy without it (``tracking/detection/`` once was)."""
    from setuptools import find_packages

    found = set(find_packages(str(ROOT), include=["nexus_backend*", "nexus_lab*"]))
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in ROOT.glob("nexus_*/**/*.py")}
    assert not sorted(folders - found), "folders of modules that are not packages"
