"""Sign-up: the rules of a new account (one transaction; the database's unique index on the username backs the
check). The API (``accounts/api.py``), the demo data (``polls/demo.py``) and the lab's generators call it."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from nexus_backend.core.exceptions import DomainError

User = get_user_model()


@transaction.atomic
def user_register(*, username: str, email: str, password: str, reserved_ok: bool = False):
    """Refused (400 on ``username``): a name taken in any case, or one starting with a prefix reserved for
    generated data (``NEXUS_RESERVED_USERNAME_PREFIXES``: demo and benchmark users are removed by prefix, and
    the demo password is published). Only the generators themselves pass ``reserved_ok``. Refused (400 on
    ``password``): what Django's password validators refuse."""
    reserved = [p for p in settings.NEXUS_RESERVED_USERNAME_PREFIXES if username.lower().startswith(p)]
    if reserved and not reserved_ok:
        raise DomainError(f"Usernames starting with {reserved[0]} are reserved for generated data.", field="username")
    if User.objects.filter(username__iexact=username).exists():
        raise DomainError("A user with that username already exists.", field="username")
    user = User(username=username, email=email)
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise DomainError(" ".join(exc.messages), field="password") from None
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise DomainError("A user with that username already exists.", field="username") from None
    return user
