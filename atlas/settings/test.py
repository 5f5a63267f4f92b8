"""Tests: the database comes from DATABASE_URL (SQLite by default, PostgreSQL in CI's second run)."""

import tempfile
from pathlib import Path

from atlas.settings.base import *  # noqa: F403

DEBUG = False
SECRET_KEY = "test-only-key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Each test points MEDIA_ROOT at its own directory (tests/conftest.py); this is the fallback.
MEDIA_ROOT = Path(tempfile.gettempdir()) / "atlas-test-media"
# WhiteNoise warns on every request when STATIC_ROOT is missing; tests never collect static files.
STATIC_ROOT = Path(tempfile.mkdtemp(prefix="atlas-test-static-"))
STORAGES = {
    "default": {"BACKEND": "atlas.ops.storage.FileSystemStorage"},  # what local mode runs
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CELERY_TASK_ALWAYS_EAGER = True
ATLAS_AFTER_INGEST_TASKS = []
# The tests' search model is random: its scores sit near 0, far below the shipped model's floors.
# Floor tests set their own values.
SEARCH_FLOOR_TEXT = 0.0
SEARCH_FLOOR_IMAGE = 0.0
