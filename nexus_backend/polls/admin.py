from django.contrib import admin

from .models import Option, Poll, Vote


class OptionInline(admin.TabularInline):
    model = Option
    extra = 0
    readonly_fields = ("vote_count",)


@admin.register(Poll)
class PollAdmin(admin.ModelAdmin):
    list_display = ("id", "question", "owner", "created_at", "expires_at", "is_closed")
    list_filter = ("is_closed",)
    search_fields = ("question",)
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    inlines = [OptionInline]


@admin.register(Option)
class OptionAdmin(admin.ModelAdmin):
    list_display = ("id", "text", "poll", "position", "vote_count")
    list_select_related = ("poll",)
    raw_id_fields = ("poll",)
    readonly_fields = ("vote_count",)  # kept by services.vote_cast and the delete trigger, never typed in


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    """Votes are cast through the API (services.vote_cast counts them) and never edited (a trigger refuses it):
    the admin can view and delete them (the delete trigger keeps the counters right), not add or change them."""

    list_display = ("id", "poll", "option", "user", "created_at")
    list_select_related = ("poll", "option", "user")
    raw_id_fields = ("poll", "option", "user")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
