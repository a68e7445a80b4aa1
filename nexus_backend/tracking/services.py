"""Writes for the tracking app: the block list and retention."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import cast

import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from nexus_backend.core.exceptions import DomainError, NotFound

from .blocklist import BLOCKLIST
from .models import BlockedIP
from .networks import network_text, parse_network
from .stream import blocklist_version_key, new_redis_client

logger = logging.getLogger(__name__)

# Blocking more than this at once is almost always a typo (0.0.0.0/0 blocks everyone): ask for allow_broad.
MIN_PREFIX = {4: 8, 6: 32}


# ------------------------------------------------------------------------------------------- block list


def _network(ip_address: str, *, allow_broad: bool) -> str:
    try:
        network = parse_network(ip_address)
    except ValueError as exc:
        raise DomainError(str(exc), field="ip_address") from None
    if not allow_broad and network.prefixlen < MIN_PREFIX[network.version]:
        raise DomainError(
            f"{network} covers {network.num_addresses:,} addresses; blocking a network wider than "
            f"/{MIN_PREFIX[network.version]} needs allow_broad (--allow-broad)",
            field="ip_address",
        )
    return network_text(network)


@transaction.atomic
def blocked_ip_block(
    *,
    ip_address: str,
    reason: str = "",
    expires_at: datetime | None = None,
    allow_broad: bool = False,
) -> tuple[BlockedIP, bool]:
    """Block an address or a CIDR network (again: the reason and expiry are replaced). Returns (row, created)."""
    network = _network(ip_address, allow_broad=allow_broad)
    if expires_at is not None and expires_at <= timezone.now():
        raise DomainError("The expiry is in the past: the block would never apply.", field="expires_at")
    return BlockedIP.objects.update_or_create(
        ip_address=network, defaults={"reason": reason[:255], "expires_at": expires_at}
    )


@transaction.atomic
def blocked_ip_unblock(*, ip_address: str) -> None:
    network = _network(ip_address, allow_broad=True)
    deleted, _ = BlockedIP.objects.filter(ip_address=network).delete()
    if not deleted:
        raise NotFound(f"{ip_address.strip()} is not blocked.")


@transaction.atomic
def blocked_ip_expire(*, ids: list[int]) -> int:
    """End these blocks now (they stay listed, as history). Returns how many were still active."""
    now = timezone.now()
    changed = BlockedIP.objects.filter(pk__in=ids).exclude(expires_at__lte=now).update(expires_at=now)
    blocklist_changed()
    return changed


@transaction.atomic
def blocked_ip_extend(*, ids: list[int], by: timedelta) -> int:
    """Push the expiry of these blocks ``by`` later, counted from now for blocks that already expired."""
    now = timezone.now()
    rows = list(BlockedIP.objects.select_for_update().filter(pk__in=ids).exclude(expires_at__isnull=True))
    for row in rows:
        row.expires_at = max(cast(datetime, row.expires_at), now) + by  # never null: excluded above
    BlockedIP.objects.bulk_update(rows, ["expires_at"])
    blocklist_changed()
    return len(rows)


def blocklist_changed() -> None:
    """This process reloads before its next request; every other one once the change commits (Redis INCR)."""
    BLOCKLIST.mark_stale()
    transaction.on_commit(_announce_change)


def on_blocked_ip_change(sender, **kwargs) -> None:
    blocklist_changed()


def _announce_change() -> None:
    try:
        version = new_redis_client().incr(blocklist_version_key())
    except (redis.RedisError, OSError) as exc:
        logger.warning(
            "block list changed but Redis did not answer (%s): other processes apply the change within "
            "NEXUS_BLOCKLIST_MAX_AGE_SECONDS (%s s)",
            exc,
            settings.NEXUS_BLOCKLIST_MAX_AGE_SECONDS,
        )
        BLOCKLIST.mark_stale()
        return
    BLOCKLIST.mark_stale(version)


# ------------------------------------------------------------------------------------------- retention


def request_log_prune(*, older_than_days: int | None = None, batch_size: int = 10_000) -> int:
    """Delete request logs older than the retention period, in batches (short transactions). Returns rows."""
    days = settings.NEXUS_REQUEST_LOG_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                "DELETE FROM tracking_requestlog WHERE id IN "
                "(SELECT id FROM tracking_requestlog WHERE timestamp < %s LIMIT %s)",
                [cutoff, batch_size],
            )
            deleted = cur.rowcount
        total += deleted
        if deleted < batch_size:
            break
    if total:
        logger.info("request log: pruned %d rows older than %s days", total, days)
    return total
