"""Reads for the tracking app."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from .models import BlockedIP


def blocked_ip_active(*, now: datetime | None = None) -> list[tuple[str, datetime | None]]:
    """``(ip_address, expires_at)`` of every block that has not expired: what the in-process set is built from."""
    now = now or timezone.now()
    return list(
        BlockedIP.objects.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).values_list(
            "ip_address", "expires_at"
        )
    )
