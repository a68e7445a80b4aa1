from django.contrib import admin

from .models import CacheMetricsSnapshot


@admin.register(CacheMetricsSnapshot)
class CacheMetricsSnapshotAdmin(admin.ModelAdmin):
    list_display = ("taken_at", "window_seconds", "hit_ratio", "app_hit_ratio", "keyspace_hits", "keyspace_misses")
    date_hierarchy = "taken_at"
    readonly_fields = [f.name for f in CacheMetricsSnapshot._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
