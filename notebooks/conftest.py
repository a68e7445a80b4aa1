"""Under pytest (``make test``), nbval's notebook kernels run against the **test** database, never the development one.

nbval starts one kernel per notebook, and a kernel inherits this process's environment; the bootstrap's
``django.setup()`` then reads ``NEXUS_DB_NAME`` (``nexus_backend/infra/service_urls.py``). So, before the first
notebook's kernel starts:

1. the test database must exist and be migrated: when pytest-django already made it (a test that needed the
   database ran earlier in the session) it is reused; otherwise it is made here the same way (``setup_databases``,
   torn down when pytest ends);
2. its name goes into ``NEXUS_DB_NAME`` (the workers notebook 04 and 06 start get it from their kernel).

Notebooks run after every other test in a session, so pytest-django never sets up its database after this did.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings

DEVELOPMENT_DB = settings.DATABASES["default"]["NAME"]  # read before any test database replaces it


def _is_notebook(item: pytest.Item) -> bool:
    return type(item).__module__.startswith("nbval")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    items.sort(key=_is_notebook)  # stable: the notebooks, in their order, after everything else


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if not _is_notebook(item) or os.environ.get("NEXUS_DB_NAME") not in (None, DEVELOPMENT_DB):
        return
    from django.db import connection

    if connection.settings_dict["NAME"] == DEVELOPMENT_DB:  # no test has set up the test database: do it here
        from django.test.utils import setup_databases, teardown_databases
        from pytest_django.plugin import blocking_manager_key

        blocker = item.config.stash[blocking_manager_key]
        with blocker.unblock():
            created = setup_databases(verbosity=0, interactive=False, aliases={"default"}, serialized_aliases=set())

        def teardown() -> None:
            with blocker.unblock():
                teardown_databases(created, verbosity=0)

        item.config.add_cleanup(teardown)
    assert connection.settings_dict["NAME"] != DEVELOPMENT_DB
    os.environ["NEXUS_DB_NAME"] = connection.settings_dict["NAME"]
