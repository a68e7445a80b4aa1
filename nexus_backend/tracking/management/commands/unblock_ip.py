"""``manage.py unblock_ip``: remove blocks; every web process stops answering 403 within a second."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from nexus_backend.core.exceptions import DomainError
from nexus_backend.tracking import services


class Command(BaseCommand):
    help = "Remove the block on IP addresses or CIDR networks (exactly as they were blocked)."

    def add_arguments(self, parser):
        parser.add_argument("addresses", nargs="+", metavar="ADDRESS", help="203.0.113.7, 10.0.0.0/8 …")

    def handle(self, *args, addresses, **options):
        for address in addresses:
            try:
                services.blocked_ip_unblock(ip_address=address)
            except DomainError as exc:
                raise CommandError(f"{address}: {exc.message}") from None
            self.stdout.write(f"unblocked {address.strip()}")
