"""gunicorn configuration of ``manage.py bench_cache``'s ``uncached_count`` server (``--config
python:nexus_lab.caching.gunicorn_count``, passed through ``GUNICORN_CMD_ARGS``).

Its workers answer ``/api/polls/{id}/results/`` by counting the poll's votes with ``COUNT(*)`` at read time
(``nexus_backend.polls.counting``'s ``count`` strategy) instead of reading the denormalised counters the API
uses: the cost the cache saves when a result is expensive to compute. Nothing else uses this module.
"""


def post_worker_init(worker) -> None:
    from nexus_backend.polls import counting

    counting.RESULTS_STRATEGY = counting.COUNT.name
