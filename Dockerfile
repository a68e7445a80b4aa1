# Nexus: the service image (gunicorn web, Celery worker and beat; the default, last stage) and a lab image
# (JupyterLab and the notebooks' packages: `--target lab`). docker-compose.yml picks the stage and the command.
# Build: docker build -t nexus .   Run alone: docker run -e DATABASE_URL=... -e REDIS_URL=... nexus
# The service image installs [project.dependencies] only: no notebook, load-test or embedded-server packages.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NEXUS_STATE_DIR=/app/.nexus

WORKDIR /app

# uid 1000 matches the usual first user on a Linux host, so bind-mounted notebooks/ stay writable.
RUN groupadd --gid 1000 nexus \
    && useradd --uid 1000 --gid nexus --create-home --home-dir /home/nexus --shell /usr/sbin/nologin nexus

# Dependencies first, read from pyproject.toml, so code edits do not reinstall them (each stage below installs
# its own list). psycopg2-binary ships a manylinux wheel: no compiler or libpq needed.
COPY pyproject.toml ./


# ---------------------------------------------------------------- the lab: JupyterLab, notebooks, benchmarks
FROM base AS lab
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['lab']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY --chown=nexus:nexus . .
RUN pip install --no-deps -e . \
    && mkdir -p "$NEXUS_STATE_DIR" /app/reports \
    && chown nexus:nexus "$NEXUS_STATE_DIR" /app/reports
USER nexus
EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--ServerApp.root_dir=/app/notebooks"]


# ---------------------------------------------------------------- the service (default target)
FROM base AS web
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project itself (editable, so settings.BASE_DIR is /app and .env, data/ resolve there).
COPY --chown=nexus:nexus . .
RUN pip install --no-deps -e . \
    && mkdir -p "$NEXUS_STATE_DIR" /app/staticfiles /app/reports \
    && chown nexus:nexus "$NEXUS_STATE_DIR" /app/staticfiles /app/reports

USER nexus

# Collect static files at build time. The URLs only satisfy settings (nothing is contacted during
# collectstatic); without them settings would start the embedded PostgreSQL inside the build.
RUN DATABASE_URL=postgres://build@127.0.0.1:1/build REDIS_URL=redis://127.0.0.1:1/0 CELERY_BROKER_URL=redis://127.0.0.1:1/1 \
    python manage.py collectstatic --no-input -v 0

EXPOSE 8000

# /health/ answers 200 only when the database, cache and broker answer (503 otherwise: urlopen raises).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/', timeout=4)" || exit 1

# Workers, threads and timeouts: gunicorn.conf.py (gthread, so a slow client holds one thread, not a process).
CMD ["gunicorn", "nexus_backend.wsgi:application", "-b", "0.0.0.0:8000", "--access-logfile", "-"]
