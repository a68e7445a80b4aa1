"""Input and output shapes of the polls API. Serializers check types and sizes; the rules live in services."""

from __future__ import annotations

from rest_framework import serializers

from nexus_backend.core.serializer_fields import CharField, IntegerField

from ..models import Option, Poll, Vote
from ..services import MAX_OPTIONS, MIN_OPTIONS

QUESTION_MAX = Poll._meta.get_field("question").max_length
DESCRIPTION_MAX = Poll._meta.get_field("description").max_length
OPTION_TEXT_MAX = Option._meta.get_field("text").max_length


# ---------------------------------------------------------------- output
class OptionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Option
        fields = ["id", "text"]
        read_only_fields = fields


class PollSerializer(serializers.ModelSerializer):
    options = OptionSerializer(many=True, read_only=True)
    is_open = serializers.BooleanField(read_only=True, help_text="Accepts votes now: not closed, not expired.")
    owner = serializers.IntegerField(source="owner_id", read_only=True, help_text="Id of the owning user.")
    owner_username = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Poll
        fields = [
            "id",
            "question",
            "description",
            "options",
            "created_at",
            "expires_at",
            "is_open",
            "is_closed",
            "owner",
            "owner_username",
        ]
        read_only_fields = fields


class VoteSerializer(serializers.ModelSerializer):
    poll = serializers.IntegerField(source="poll_id", read_only=True)
    option = serializers.IntegerField(source="option_id", read_only=True)

    class Meta:
        model = Vote
        fields = ["id", "poll", "option", "created_at"]
        read_only_fields = fields


class OptionResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    votes = serializers.IntegerField(min_value=0)


class PollResultsSerializer(serializers.Serializer):
    """Votes per option, exact: read from per-option counters updated in each vote's transaction."""

    # The shape of nexus_backend.polls.selectors.PollResults.as_dict().

    poll = serializers.IntegerField(help_text="Poll id.")
    question = serializers.CharField()
    total_votes = serializers.IntegerField(min_value=0)
    is_open = serializers.BooleanField()
    options = OptionResultSerializer(many=True)


# ---------------------------------------------------------------- input
class PollCreateSerializer(serializers.Serializer):
    question = CharField(max_length=QUESTION_MAX)
    description = CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False, max_length=DESCRIPTION_MAX
    )
    options = serializers.ListField(
        child=CharField(max_length=OPTION_TEXT_MAX),
        min_length=MIN_OPTIONS,
        max_length=MAX_OPTIONS,
        help_text="Option texts, in display order: 2 to 20 distinct, non-blank strings.",
    )
    expires_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When voting ends: in the future, and at most NEXUS_POLL_MAX_LIFETIME_DAYS (default 365) ahead.",
    )


class PollUpdateSerializer(serializers.Serializer):
    """PUT replaces every field (an omitted `description` or `expires_at` is reset); PATCH changes only
    the fields sent. `expires_at: null` removes the expiry. Options can change only before the first vote."""

    question = CharField(max_length=QUESTION_MAX)
    description = CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=DESCRIPTION_MAX)
    options = serializers.ListField(
        child=CharField(max_length=OPTION_TEXT_MAX),
        min_length=MIN_OPTIONS,
        max_length=MAX_OPTIONS,
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def to_service_kwargs(self, *, partial: bool) -> dict:
        data = dict(self.validated_data)
        if not partial:
            data.setdefault("description", "")
            data.setdefault("expires_at", None)
        if "expires_at" in data and data["expires_at"] is None:
            del data["expires_at"]
            data["clear_expiry"] = True
        return data


class PollFilterSerializer(serializers.Serializer):
    active = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: open polls only; false: closed or expired.",
    )
    owner = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text="Only polls of this user id."
    )

    def to_internal_value(self, data):
        # DRF reads `?owner=` (empty) as null, i.e. no filter; the schema says an integer: refuse it (fuzz test).
        empty = {name: ["Give a value, or leave the parameter out."] for name in self.fields if data.get(name) == ""}
        if empty:
            raise serializers.ValidationError(empty)
        return super().to_internal_value(data)


class VoteCreateSerializer(serializers.Serializer):
    option = IntegerField(min_value=1, help_text="Id of one of this poll's options.")
