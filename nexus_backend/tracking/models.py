"""What the security track records and enforces: one row per request, and the addresses that get 403.

The curriculum's names are kept (``RequestLog(ip_address, timestamp, path)``, ``BlockedIP(ip_address)``);
the extra fields are what a detector needs (docs/tracking.md: status, method, user agent and referrer matter more
than rate).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from .networks import NetworkField


class RequestLog(models.Model):
    """One HTTP request. Written in batches by the flusher (``COPY``), never by the request itself.

        ``request_id`` is made by the web process when the request is recorded; it is unique, so a batch that is
        delivered twice (a retry after a crash between the database commit and the acknowledgement) is inserted
        once. ``user`` is the authenticated user or, for a failed login, the account it named (the detector's
    ``account_campaign``); it keeps the id even after the user is deleted: logs are history (no database constraint).
    """

    request_id = models.UUIDField(unique=True, editable=False)
    ip_address = models.GenericIPAddressField(
        null=True, blank=True, help_text="The resolved client address (empty when the server gave none)."
    )
    timestamp = models.DateTimeField(help_text="When the request arrived.")
    method = models.CharField(max_length=16)
    path = models.CharField(max_length=2048)
    status_code = models.PositiveSmallIntegerField()
    duration_ms = models.FloatField(help_text="Time spent in Django, middleware included.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    user_agent = models.CharField(max_length=512, blank=True)
    referrer = models.CharField(max_length=1024, blank=True)

    class Meta:
        indexes = [
            # The hourly detector reads the newest hour and retention prunes the oldest days. A BRIN index would be
            # tiny, but it only knows the block ranges VACUUM has summarised: the newest rows (exactly the hour the
            # detector reads) sit in the unsummarised tail, which every query must scan, so after a bulk load the
            # window query read all 5M rows (bench_detect: 82,630 lossy heap blocks, 1.3 s). A B-tree on an
            # append-only column costs little to maintain and finds the window at once, vacuumed or not.
            models.Index(fields=["timestamp"], name="tracking_rl_timestamp"),
            models.Index(fields=["ip_address", "timestamp"], name="tracking_rl_ip_time"),
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.ip_address} {self.method} {self.path} {self.status_code}"


class BlockedIP(models.Model):
    """An address or a CIDR network answered 403, until ``expires_at`` (never, when empty)."""

    ip_address = NetworkField(unique=True, help_text="An address (203.0.113.7) or a CIDR network (10.0.0.0/8).")
    reason = models.CharField(max_length=255, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: blocked until removed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "blocked IP"
        verbose_name_plural = "blocked IPs"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.ip_address

    @property
    def is_active(self) -> bool:
        return self.expires_at is None or self.expires_at > timezone.now()


class SuspiciousIP(models.Model):
    """An address the detector flagged (``nexus_backend.tracking.detection``): one row per address, updated when a
    later window flags it again (``windows`` counts the windows; rules accumulate; the score keeps its highest).
    Written only by ``detection.services.suspicious_ip_upsert`` (one ``INSERT … ON CONFLICT``), so running the
    hourly task twice over the same window changes nothing."""

    ip_address = NetworkField(unique=True, help_text="An address, or the /64 of an IPv6 client (address_group).")
    reason = models.CharField(max_length=255, help_text="The rules' reasons in the latest window, in words.")
    rules = ArrayField(models.CharField(max_length=64), default=list, help_text="Every rule it ever tripped.")
    score = models.FloatField(help_text="The highest score seen (0-1).")
    evidence = models.JSONField(default=dict, help_text="Counts and sample paths of the latest window.")
    first_seen = models.DateTimeField(help_text="Its first request in a flagged window.")
    last_seen = models.DateTimeField(help_text="Its last request in a flagged window.")
    window_start = models.DateTimeField(help_text="The latest window that flagged it.")
    window_end = models.DateTimeField()
    windows = models.PositiveIntegerField(default=1, help_text="How many windows flagged it (repeat offenders).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "suspicious IP"
        verbose_name_plural = "suspicious IPs"
        ordering = ["-last_seen"]
        indexes = [models.Index(fields=["-last_seen"], name="tracking_sip_last_seen")]

    def __str__(self) -> str:
        return f"{self.ip_address} ({', '.join(self.rules)}; {self.score:.2f})"
