"""The Django app config: jobs are found in each installed app's `jobs.py` once Django is
ready."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class ConveyorConfig(AppConfig):
    """`"conveyor.integrations.django"` in INSTALLED_APPS: imports every app's `jobs.py`."""

    name = "conveyor.integrations.django"
    label = "conveyor"
    verbose_name = "Conveyor background jobs"

    def ready(self) -> None:
        """Check `settings.CONVEYOR`, then import each installed app's `jobs` module."""
        from conveyor.integrations.django.core import get_app

        get_app()  # a wrong setting fails at startup, naming the key
        autodiscover_modules("jobs")
