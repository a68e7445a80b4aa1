from django.apps import AppConfig


class CachingConfig(AppConfig):
    name = "nexus_backend.caching"
    label = "caching"
    verbose_name = "Caching"

    def ready(self) -> None:
        # Imported here, not at the top: a module that uses models cannot be imported before the app registry is
        # ready (Django's rule for AppConfig.ready()).
        from django.db.models.signals import post_migrate

        from . import invalidation

        # A migrated or flushed database (tests flush it after every transactional test) no longer matches what
        # is cached, and a schema change may change serialized shapes: start a new epoch.
        post_migrate.connect(invalidation.after_migrate, sender=self, dispatch_uid="nexus-caching-epoch")
