from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "nexus_backend.core"
    label = "core"
    verbose_name = "Nexus core"
