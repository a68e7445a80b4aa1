"""Writing records as log lines: Apache/Nginx combined (what the traffic generator writes) and the app's JSONL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from .clf import Record


def _clf_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _esc(text: str) -> str:
    return (text or "-").replace("\\", "\\\\").replace('"', '\\"')


def format_combined(rec: Record, *, size: int = 0) -> str:
    """``rec`` as an Apache/Nginx combined log line (the generator writes these)."""
    request = f"{rec.method} {rec.path} HTTP/1.1" if rec.method else rec.path
    return (
        f'{rec.ip} - - [{_clf_time(rec.ts)}] "{_esc(request)}" {rec.status} {size} '
        f'"{_esc(rec.referrer)}" "{_esc(rec.user_agent)}"'
    )


def format_jsonl(rec: Record) -> str:
    """``rec`` as a line of the app's JSONL export (``RequestLog`` field names)."""
    return json.dumps(
        {
            "timestamp": datetime.fromtimestamp(rec.ts, tz=UTC).isoformat(),
            "ip_address": rec.ip,
            "method": rec.method,
            "path": rec.path,
            "status_code": rec.status,
            "user_agent": rec.user_agent,
            "referrer": rec.referrer,
        },
        separators=(",", ":"),
    )
