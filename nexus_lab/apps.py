from django.apps import AppConfig


class LabConfig(AppConfig):
    """Installed in development and test only (settings): its management commands and the ``/bench/bare/`` route
    exist there and nowhere else."""

    name = "nexus_lab"
    label = "nexus_lab"
    verbose_name = "Nexus lab (benchmarks, generators, notebooks)"
