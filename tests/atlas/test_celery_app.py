"""The Celery app is loaded by Django processes and by `celery -A atlas`, not by `import atlas`."""

from __future__ import annotations

import os
import subprocess
import sys


def _run(code: str, **env) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"} | env
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment).stdout.strip()


def test_a_django_process_sends_tasks_through_the_atlas_app():
    code = "import django; django.setup(); from celery import current_app; print(current_app.main)"
    assert _run(code, DJANGO_SETTINGS_MODULE="atlas.settings.local") == "atlas"


def test_celery_finds_the_app_from_the_package_name():
    code = "from celery.app.utils import find_app; import sys; app = find_app('atlas'); print(app.main, 'django.conf' in sys.modules)"
    assert _run(code) == "atlas False"


def test_the_vocabularies_load_neither_django_nor_celery():
    code = "import sys, atlas, atlas.skin, atlas.taxonomy; print('django' in sys.modules or 'celery' in sys.modules)"
    assert _run(code) == "False"
    assert _run("import atlas; print(atlas.celery_app.main)") == "atlas"
