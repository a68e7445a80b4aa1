from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-up and the auth API. No models of its own: users are Django's, refresh tokens simplejwt's."""

    name = "nexus_backend.accounts"
    label = "accounts"
    verbose_name = "Accounts"
