"""The lab: everything that studies, measures or drives the Nexus service but that a deployment never runs.

Benchmarks and the load test (``benchmark``, ``load``, ``loadgen``, ``polls/bench.py``, ``caching/bench.py``,
``detection/bench.py``), data and traffic generators (``polls/datagen.py``, ``caching/workload.py``, ``traffic/``),
study helpers (``polls/explain.py``, ``detection/evaluate.py``), notebook support (``notebooks/``), the Postman
generator, test support (``testing.py``) and the developer commands (``management/commands``: ``bench``,
``load``, ``run_notebooks``, ``postman``, ``serve``, ``embedded``, ...).

It depends on ``nexus_backend`` and never the other way round. It is a Django app installed by the development
and test settings only (not in production), and its heavy dependencies (pandas, papermill, locust, ...) come
from the ``lab`` extra: ``pip install .`` installs the service alone.
"""
