from datetime import timedelta

from django.contrib import admin, messages
from django.utils import timezone

from nexus_backend.core.exceptions import DomainError

from . import services
from .models import BlockedIP, RequestLog


class ActiveFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [("yes", "active"), ("no", "expired")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.exclude(expires_at__lte=now)
        if self.value() == "no":
            return queryset.filter(expires_at__lte=now)
        return queryset


@admin.register(BlockedIP)
class BlockedIPAdmin(admin.ModelAdmin):
    """Saves and deletes reach every web process's block list (signals -> services.blocklist_changed)."""

    list_display = ("ip_address", "reason", "expires_at", "created_at", "active")
    list_filter = (ActiveFilter,)
    search_fields = ("ip_address", "reason")
    actions = ["expire_now", "extend_one_day"]

    @admin.display(boolean=True)
    def active(self, obj: BlockedIP) -> bool:
        return obj.is_active

    @admin.action(description="Unblock now (keep the row, expired)")
    def expire_now(self, request, queryset):
        changed = services.blocked_ip_expire(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{changed} block(s) ended.", messages.SUCCESS)

    @admin.action(description="Extend by 24 hours")
    def extend_one_day(self, request, queryset):
        changed = services.blocked_ip_extend(ids=list(queryset.values_list("pk", flat=True)), by=timedelta(days=1))
        self.message_user(request, f"{changed} block(s) extended (blocks without expiry are unchanged).")


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):
    """Read-only: rows are written by the flusher. Select rows and block their addresses."""

    list_display = ("timestamp", "ip_address", "method", "path", "status_code", "duration_ms", "user_id")
    list_filter = ("method", "status_code")
    search_fields = ("=ip_address", "path")
    date_hierarchy = "timestamp"
    ordering = ("-timestamp",)
    show_full_result_count = False  # COUNT(*) over a big log table on every page is slow
    actions = ["block_addresses"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Block the addresses of the selected requests for 24 hours")
    def block_addresses(self, request, queryset):
        addresses = sorted(set(queryset.exclude(ip_address=None).values_list("ip_address", flat=True)))
        expires = timezone.now() + timedelta(days=1)
        for address in addresses:
            try:
                services.blocked_ip_block(
                    ip_address=address, reason=f"blocked from the request log by {request.user}", expires_at=expires
                )
            except DomainError as exc:
                self.message_user(request, f"{address}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Blocked for 24 hours: {', '.join(addresses) or 'nothing'}.")
