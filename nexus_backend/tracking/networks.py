"""A model field for an IP address or a CIDR network, stored in PostgreSQL's ``cidr`` type.

Values are normalised text: a single address is written without its prefix (``203.0.113.7``, not
``203.0.113.7/32``), a network in CIDR notation (``10.0.0.0/8``). A network with host bits set
(``10.0.0.5/8``) is refused with a message saying which network was probably meant.
"""

from __future__ import annotations

import ipaddress

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(value: str) -> Network:
    """``value`` as a network; raises ``ValueError`` with a one-line message a person can act on."""
    text = str(value).strip()
    if not text:
        raise ValueError("an IP address or CIDR network is required (e.g. 203.0.113.7 or 10.0.0.0/8)")
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(
                f"{text!r} is not an IP address or CIDR network (e.g. 203.0.113.7, 2001:db8::1 or 10.0.0.0/8)"
            ) from exc
        raise ValueError(f"{text!r} has host bits set; did you mean {loose}?") from exc
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped is not None:
        mapped = network.network_address.ipv4_mapped
        network = ipaddress.ip_network(f"{mapped}/{max(0, network.prefixlen - 96)}")
    return network


def network_text(network: Network) -> str:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def normalize_network(value: str) -> str:
    return network_text(parse_network(value))


class NetworkFormField(forms.CharField):
    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return value
        try:
            return normalize_network(value)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid") from exc


class NetworkField(models.Field):
    description = "An IP address or CIDR network (PostgreSQL cidr)"

    def db_type(self, connection):
        return "cidr"

    def from_db_value(self, value, expression, connection):
        if value is None:
            return value
        return network_text(ipaddress.ip_network(value))

    def to_python(self, value):
        if value is None or value == "":
            return value
        try:
            return normalize_network(value)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid") from exc

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return None
        return str(parse_network(value))

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": NetworkFormField, "max_length": 64, **kwargs})
