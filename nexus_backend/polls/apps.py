from django.apps import AppConfig


class PollsConfig(AppConfig):
    name = "nexus_backend.polls"
    label = "polls"
    verbose_name = "Polls"

    def ready(self) -> None:
        # Imported here, not at the top: models cannot be imported before the app registry is ready (Django's
        # rule for AppConfig.ready()).
        from django.db.models.signals import post_delete, post_save

        from nexus_backend.caching import invalidation

        from .models import Option, Poll

        # Poll and option writes made outside the services (the admin, a shell) invalidate the cached reads too.
        for model in (Poll, Option):
            for signal in (post_save, post_delete):
                signal.connect(
                    invalidation.on_model_change,
                    sender=model,
                    dispatch_uid=f"nexus-caching-{model.__name__}-{signal is post_save}",
                )
