"""Serializer fields shared by the API: DRF's, held to what the OpenAPI schema says (found by the fuzz test)."""

from __future__ import annotations

from rest_framework import serializers


class CharField(serializers.CharField):
    """DRF's CharField, but a JSON number is not a string (DRF turned ``189010`` into ``"189010"``), and
    ``max_length`` counts the text as sent, which is what the schema's ``maxLength`` promises (DRF checked it
    after trimming surrounding whitespace, so 201 characters with a leading space passed a limit of 200)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class IntegerField(serializers.IntegerField):
    """DRF's IntegerField, but ``"5"`` and ``5.0`` in a JSON body are not integers, as the schema says."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)
