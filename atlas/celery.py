"""The Celery app. Workers: `celery -A atlas worker -Q default,indexing` and `-Q generation -c 1`.

DJANGO_SETTINGS_MODULE must be set: a worker or beat never falls back to the local settings
(DEBUG on). The check runs when Celery loads its configuration (a worker or beat starting,
the first task sent), not at import, so Django-free code may import `atlas.skin` and friends.
"""

import os

from celery import Celery

app = Celery("atlas")


def __getattr__(name: str):
    # PEP 562: Celery reads "atlas.celery:django_settings" when it loads its configuration.
    if name == "django_settings":
        if not os.environ.get("DJANGO_SETTINGS_MODULE"):
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                "DJANGO_SETTINGS_MODULE is not set: export atlas.settings.production (or atlas.settings.local "
                "on a laptop) before starting a Celery worker or beat"
            )
        from django.conf import settings

        return settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


app.config_from_object("atlas.celery:django_settings", namespace="CELERY")
app.autodiscover_tasks()
