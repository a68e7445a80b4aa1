"""Production (NEXUS_ENV=production): refuses to start, with one line naming every variable to set, unless it has
a strong SECRET_KEY, DEBUG off, ALLOWED_HOSTS, and real DATABASE_URL, REDIS_URL and CELERY_BROKER_URL (it never
starts the embedded servers). Checked before any service is resolved (docs/operations.md "Production").
"""

import sys

from .security import ALLOWED_HOSTS, DEBUG, SECRET_KEY, production_problems, service_url_problems

_refused = production_problems(secret_key=SECRET_KEY, debug=DEBUG, allowed_hosts=ALLOWED_HOSTS) + service_url_problems()
if _refused:
    print("error: NEXUS_ENV=production refuses to start: " + "; ".join(_refused), file=sys.stderr)
    raise SystemExit(3)  # 3: gunicorn's "worker failed to boot", so the master stops instead of respawning

from .base import *  # noqa: E402, F403
