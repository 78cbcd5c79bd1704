"""Settings of the test project: Django and the store on the PostgreSQL test server."""

import os

SECRET_KEY = "test-project-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
ROOT_URLCONF = "project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "conveyor.integrations.django",
    "shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("CONVEYOR_DJANGO_DB", "conveyor_django"),
        "USER": os.environ.get("CONVEYOR_DJANGO_USER", "postgres"),
        "HOST": os.environ.get("CONVEYOR_DJANGO_HOST", "127.0.0.1"),
        "PORT": os.environ.get("CONVEYOR_DJANGO_PORT", "5432"),
    }
}
# No url: the store is Django's own database (schema "conveyor"), so enqueues join its
# transactions.
CONVEYOR = {
    "settings": {"poll_interval": 0.05},
    "queues": {"receipts": 2},
}
