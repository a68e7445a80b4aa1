"""``manage.py block_ip``: answer 403 to an address or a CIDR network, now, in every web process."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from nexus_backend.core.exceptions import DomainError
from nexus_backend.tracking import services
from nexus_backend.tracking.selectors import blocked_ip_active

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", text)
    if not match or int(match.group(1)) == 0:
        raise CommandError(f"--for: {text!r} is not a duration like 90s, 15m, 2h, 7d or 1w")
    return timedelta(seconds=int(match.group(1)) * UNITS[match.group(2) or "s"])


def parse_until(text: str) -> datetime:
    value = parse_datetime(text.strip())
    if value is None:
        raise CommandError(f"--until: {text!r} is not a date and time like 2030-01-31T18:00 or 2030-01-31 18:00+02:00")
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


class Command(BaseCommand):
    help = "Block IP addresses or CIDR networks (403 JSON), optionally until an expiry. --list shows active blocks."

    def add_arguments(self, parser):
        parser.add_argument("addresses", nargs="*", metavar="ADDRESS", help="203.0.113.7, 2001:db8::1, 10.0.0.0/8 …")
        parser.add_argument("--reason", default="", help="why (shown in the admin)")
        when = parser.add_mutually_exclusive_group()
        when.add_argument("--for", dest="duration", help="block for 90s, 15m, 2h, 7d or 1w (default: until removed)")
        when.add_argument("--until", help="block until this date and time (ISO 8601; default time zone UTC)")
        parser.add_argument(
            "--allow-broad", action="store_true", help="allow networks wider than /8 (IPv4) or /32 (IPv6)"
        )
        parser.add_argument("--list", dest="list_blocks", action="store_true", help="list the active blocks and exit")

    def handle(self, *args, addresses, reason, duration, until, allow_broad, list_blocks, **options):
        if list_blocks:
            rows = blocked_ip_active()
            for address, expires_at in sorted(rows, key=lambda r: r[0]):
                self.stdout.write(f"{address:<43} {'until ' + expires_at.isoformat() if expires_at else 'no expiry'}")
            self.stdout.write(f"{len(rows)} active block(s)")
            return
        if not addresses:
            raise CommandError("give at least one address or network, e.g. manage.py block_ip 203.0.113.7")
        expires_at = None
        if duration:
            expires_at = timezone.now() + parse_duration(duration)
        elif until:
            expires_at = parse_until(until)
        for address in addresses:
            try:
                row, created = services.blocked_ip_block(
                    ip_address=address, reason=reason, expires_at=expires_at, allow_broad=allow_broad
                )
            except DomainError as exc:
                raise CommandError(f"{address}: {exc.message}") from None
            when = f"until {row.expires_at.isoformat()}" if row.expires_at else "until removed"
            self.stdout.write(f"{'blocked' if created else 'updated'} {row.ip_address} {when}")
