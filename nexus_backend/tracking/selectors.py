"""Reads for the tracking app."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from .models import BlockedIP, SuspiciousIP


def blocked_ip_active(*, now: datetime | None = None) -> list[tuple[str, datetime | None]]:
    """``(ip_address, expires_at)`` of every block that has not expired: what the in-process set is built from."""
    now = now or timezone.now()
    return list(
        BlockedIP.objects.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).values_list(
            "ip_address", "expires_at"
        )
    )


def suspicious_ip_counts() -> tuple[int, dict[str, int]]:
    """How many addresses are flagged, and how many of them tripped each rule (for ``/metrics``). One query."""
    table = connection.ops.quote_name(SuspiciousIP._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT NULL, COUNT(*) FROM {table} UNION ALL "
            f"SELECT rule, COUNT(DISTINCT s.id) FROM {table} AS s CROSS JOIN LATERAL unnest(s.rules) AS rule "
            "WHERE rule IS NOT NULL GROUP BY rule"
        )
        rows = cursor.fetchall()
    total = next(count for rule, count in rows if rule is None)
    return total, {rule: count for rule, count in rows if rule is not None}
