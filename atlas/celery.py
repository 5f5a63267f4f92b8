"""The Celery app. Workers: `celery -A atlas worker -Q default,indexing` and `-Q generation -c 1`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atlas.settings.local")

app = Celery("atlas")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
