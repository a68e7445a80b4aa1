from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "nexus_backend.tracking"
    label = "tracking"
    verbose_name = "Request tracking"

    def ready(self) -> None:
        # Imported here, not at the top: models cannot be imported before the app registry is ready (Django's
        # rule for AppConfig.ready()).
        from django.db.models.signals import post_delete, post_save

        from . import services
        from .models import BlockedIP

        # Any change, from a service, the admin or the shell, reaches every process's in-process block list.
        post_save.connect(services.on_blocked_ip_change, sender=BlockedIP, dispatch_uid="tracking-blocked-save")
        post_delete.connect(services.on_blocked_ip_change, sender=BlockedIP, dispatch_uid="tracking-blocked-delete")
