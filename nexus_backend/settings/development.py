"""Development (NEXUS_ENV unset or development): DEBUG on, plain http://localhost, the browsable API, GraphiQL, a
random SECRET_KEY kept in the state folder, and the embedded PostgreSQL and Redis when no service URL is set.

Those defaults are picked in the component modules from ``PRODUCTION``. Added here: the lab (``nexus_lab/``:
benchmarks, generators, notebook support, developer commands, ``/bench/bare/``), installed outside production only.
"""

from .base import *  # noqa: F403
from .base import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "nexus_lab"]
