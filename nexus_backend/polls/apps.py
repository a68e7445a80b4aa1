from django.apps import AppConfig


class PollsConfig(AppConfig):
    name = "nexus_backend.polls"
    label = "polls"
    verbose_name = "Polls"
