"""Atlas: the Django project and the catalogue of clinical skin images."""

from atlas.celery import app as celery_app

__all__ = ["celery_app"]
