"""Outages answer clearly: a database that is down is a 503, a full disk a 507, never a 500.

Nothing half-written is left behind either way: ingestion writes its row in one transaction
and removes the files it stored when anything fails (atlas/services/ingestion.py).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30


def _outage(exc: Exception) -> tuple[int, str, str] | None:
    if isinstance(exc, OperationalError | InterfaceError):
        return 503, "database_unavailable", "The database is unavailable right now; nothing was saved. Try again in a minute."
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return 507, "storage_full", "The server has no space left to store files; nothing was saved. Please tell the operators."
    return None


class OutageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        outage = _outage(exc)
        if outage is None:
            return None
        status, code, message = outage
        logger.error("%s on %s %s: %s", code, request.method, request.path, exc, extra={"code": code})
        if request.path.startswith("/api/"):
            from atlas.api.errors import error_body

            response = JsonResponse(error_body(status, code, message), status=status)
        else:
            response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
        if status == 503:
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
