"""The WSGI application (gunicorn). DJANGO_SETTINGS_MODULE must be set: a server never falls
back to the local settings (DEBUG on). manage.py keeps its local default for commands."""

import os

from atlas.blas import web_process_blas_threads

web_process_blas_threads()  # before anything loads numpy

from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

if not os.environ.get("DJANGO_SETTINGS_MODULE"):
    raise ImproperlyConfigured(
        "DJANGO_SETTINGS_MODULE is not set: export atlas.settings.production (or atlas.settings.local "
        "on a laptop) before starting the web server"
    )
application = get_wsgi_application()
