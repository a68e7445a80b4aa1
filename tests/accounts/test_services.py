"""Sign-up rules (``accounts.services.user_register``)."""

from __future__ import annotations

import pytest

from nexus_backend.accounts import services
from nexus_backend.core.exceptions import DomainError

pytestmark = pytest.mark.django_db


def test_user_register_rules(user):
    created = services.user_register(username="newbie", email="n@example.com", password="a-long-passphrase-9")
    assert created.check_password("a-long-passphrase-9")
    with pytest.raises(DomainError) as caught:
        services.user_register(username="Alice", email="x@example.com", password="a-long-passphrase-9")
    assert caught.value.field == "username"
    with pytest.raises(DomainError) as caught:
        services.user_register(username="weak", email="w@example.com", password="123")
    assert caught.value.field == "password"
