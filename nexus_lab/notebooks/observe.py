"""Reading what the service says about itself, for notebook 06: JSON log lines and the ``/metrics`` scrape.

- :func:`capture_json_logs`: the records this process logs inside a block, formatted exactly as production writes
  them (the JSON formatter and the request-id filter of ``settings.LOGGING``, ``core/logs.py``), parsed back.
- :func:`json_lines`: the JSON records in a log's text (a worker's log mixes Celery's banner with JSON lines).
- :func:`metrics_frame`: Prometheus text (``GET /metrics``) as a pandas DataFrame, one row per sample, parsed by
  prometheus_client's own parser.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import logging.config
from collections.abc import Iterator


def json_lines(text: str) -> list[dict]:
    """Every line of ``text`` that is a JSON object, parsed; other lines are skipped."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
    return found


@contextlib.contextmanager
def capture_json_logs(*names: str, level: int = logging.INFO) -> Iterator[list[dict]]:
    """Collect what the loggers ``names`` write inside the block as JSON records (filled in when the block ends)."""
    from nexus_backend.core.logs import ContextFilter, logging_config

    config = logging_config(log_format="json", root_level="WARNING", app_level="INFO")
    formatter = logging.config.DictConfigurator(config).configure_formatter(config["formatters"]["json"])
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter(missing=None))
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    records: list[dict] = []
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(level)
    try:
        yield records
    finally:
        for logger, old in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(old)
        records.extend(json_lines(buffer.getvalue()))


def metrics_frame(text: str):
    """Prometheus exposition text -> DataFrame with columns ``metric`` (the family), ``sample`` (e.g. ``_bucket``
    series), ``value`` and one column per label (empty where a sample lacks it)."""
    import pandas as pd
    from prometheus_client.parser import text_string_to_metric_families

    rows = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            rows.append(
                {
                    "metric": family.name,
                    "type": family.type,
                    "sample": sample.name,
                    **sample.labels,
                    "value": sample.value,
                }
            )
    return pd.DataFrame(rows).fillna("")
