"""Hidden images' files are served by the authenticated view only (atlas.web.views.image_file).

The view checks who may see the image; this module hands the file over in the way the
deployment serves files (docs/operations.md, "Private files").
"""

from __future__ import annotations

import mimetypes
import posixpath
import re

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.static import serve

from atlas.models import PRIVATE_PREFIX


def private_file_response(name: str) -> HttpResponse:
    """A response that hands one private file to a caller the view has already let in.

    Object stores (S3): a redirect to a presigned URL that expires after
    PRIVATE_MEDIA_URL_SECONDS. Local files: by PRIVATE_MEDIA_SERVE, an `X-Accel-Redirect` to
    nginx's internal location, an `X-Sendfile` path (Apache, lighttpd), or the bytes streamed
    by Django (development, or no web server in front).
    """
    storage = default_storage
    if _is_remote(storage):
        response: HttpResponse = HttpResponseRedirect(storage.url(name, expire=settings.PRIVATE_MEDIA_URL_SECONDS))
    else:
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        mode = settings.PRIVATE_MEDIA_SERVE
        if mode == "x-accel":
            response = HttpResponse(content_type=content_type)
            response["X-Accel-Redirect"] = settings.PRIVATE_MEDIA_ACCEL_URL + name.removeprefix(PRIVATE_PREFIX)
        elif mode == "x-sendfile":
            response = HttpResponse(content_type=content_type)
            response["X-Sendfile"] = storage.path(name)
        else:
            response = FileResponse(storage.open(name, "rb"), content_type=content_type)
    # Only the caller may keep it: never a shared cache, a proxy or a CDN.
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _is_remote(storage) -> bool:
    try:
        storage.path("x")
    except NotImplementedError:
        return True
    return False


def public_media_patterns() -> list:
    """DEBUG only (runserver): serve MEDIA_ROOT as Django's static() does, but never private/.

    Production serves public files from the web server or the bucket (docs/operations.md)."""
    from django.urls import re_path

    prefix = settings.MEDIA_URL.lstrip("/")
    if not prefix or "://" in settings.MEDIA_URL:
        return []
    return [re_path(rf"^{re.escape(prefix)}(?P<path>.*)$", serve_public_media)]


def serve_public_media(request: HttpRequest, path: str) -> HttpResponse:
    # Normalised first, as serve() does, so "images/../private/..." is refused too.
    normalised = posixpath.normpath(path).lstrip("/")
    if (normalised + "/").startswith(PRIVATE_PREFIX):
        raise Http404("Private files are served through /images/<id>/file/ only")
    return serve(request, path, document_root=settings.MEDIA_ROOT)
