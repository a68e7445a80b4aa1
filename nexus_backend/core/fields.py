"""Serializer fields shared by the API."""

from __future__ import annotations

from rest_framework import serializers


class CharField(serializers.CharField):
    """DRF's CharField, but ``max_length`` counts the text as sent, which is what the schema's ``maxLength``
    promises. DRF checks it after trimming surrounding whitespace, so 201 characters with a leading space passed
    a documented limit of 200 (found by the fuzz test)."""

    def to_internal_value(self, data):
        if isinstance(data, str) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)
