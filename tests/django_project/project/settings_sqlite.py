"""Settings of the test project on SQLite: Django's database and the store are two files, so
enqueues inside transaction.atomic() wait for the commit."""

import os
from pathlib import Path

from project.settings import *  # noqa: F403

_DIR = Path(os.environ.get("CONVEYOR_DJANGO_DIR", Path(__file__).resolve().parent.parent))
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(_DIR / "django.db"),
        "TEST": {"NAME": str(_DIR / "django-test.db")},
    }
}
CONVEYOR = {
    "url": f"sqlite:///{_DIR / 'jobs.db'}",
    "queues": {"receipts": 2},
}
