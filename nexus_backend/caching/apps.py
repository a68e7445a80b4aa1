from django.apps import AppConfig


class CachingConfig(AppConfig):
    name = "nexus_backend.caching"
    label = "caching"
    verbose_name = "Caching"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import invalidation

        # A migrated or flushed database (tests flush it after every transactional test) no longer matches what
        # is cached, and a schema change may change serialized shapes: start a new epoch.
        post_migrate.connect(invalidation.after_migrate, sender=self, dispatch_uid="nexus-caching-epoch")

        # Poll and option writes made outside the services (the admin, a shell) invalidate too.
        from django.db.models.signals import post_delete, post_save

        from nexus_backend.polls.models import Option, Poll

        for model in (Poll, Option):
            for signal in (post_save, post_delete):
                signal.connect(
                    invalidation.on_model_change,
                    sender=model,
                    dispatch_uid=f"nexus-caching-{model.__name__}-{signal is post_save}",
                )
