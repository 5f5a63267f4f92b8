"""One JSON error shape for every API failure: {"error": {"status", "code", "message", "details"}}.

DRF exceptions (validation, auth, throttling, 404, 405, ...) go through `exception_handler`;
refusals from services (IngestionError, ExportRefused, SearchError, SearchUnavailable) are mapped here so views
stay thin; Django's own 400/403/404/500 pages answer in the same shape under /api/.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from atlas.services.exports import ExportRefused
from atlas.services.ingestion import IngestionError
from search.errors import SearchError, SearchUnavailable

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


class ApiError(exceptions.APIException):
    """A refusal with its own stable code: raise ApiError("not_ready", "...", status=409)."""

    def __init__(self, code: str, message: str, *, status: int = 400, details: dict | None = None) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status
        self.code = code
        self.details = details


def error_body(status_code: int, code: str, message: str, details=None) -> dict:
    return {"error": {"status": status_code, "code": code, "message": message, "details": details}}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    exc = _translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django logs it and handler500 answers
    response.data = error_body(response.status_code, *_code_message_details(exc, response))
    return response


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, IngestionError | ExportRefused | SearchError):
        too_large = exc.code == "too_large"  # the same answer as a body refused by its length
        return ApiError(exc.code, exc.message, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if too_large else 400)
    if isinstance(exc, SearchUnavailable):
        return ApiError("search_unavailable", str(exc), status=status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    return exc


def _code_message_details(exc: Exception, response: Response) -> tuple[str, str, object]:
    if isinstance(exc, ApiError):
        return exc.code, str(exc.detail), exc.details
    if isinstance(exc, exceptions.ValidationError):
        details = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        return "invalid", "The request has invalid fields; see details.", details
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait) if exc.wait is not None else None
        return "throttled", f"Too many requests; retry in {wait} seconds.", {"retry_after": wait}
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes()
        return (code if isinstance(code, str) else exc.default_code), str(exc.detail), None
    return "error", str(exc), None


# --- Django's error views: JSON under /api/, the normal pages elsewhere -----------------------


def _json(request: HttpRequest, status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(status_code, code, message), status=status_code)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


_CODES = {400: "bad_request", 403: "permission_denied", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
          500: "server_error"}
_KEPT_HEADERS = ("Allow", "Retry-After")


class ApiErrorPagesMiddleware:
    """Under /api/ every error answers in the API's shape, DEBUG on or off.

    The handlers below cover DEBUG off; with DEBUG on Django answers its debug pages instead
    (e.g. the HTML 404 for an id that does not match a route), which a generated client cannot
    read. This replaces any non-JSON error answer under /api/ with the JSON one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or not _is_api(request) or response.get("Content-Type", "").startswith("application/json"):
            return response
        status_code = response.status_code
        code = _CODES.get(status_code, "error")
        replacement = _json(request, status_code, code, _MESSAGES.get(code, "The request failed."))
        for header in _KEPT_HEADERS:
            if header in response:
                replacement[header] = response[header]
        return replacement


_MESSAGES = {
    "bad_request": "The request could not be understood.",
    "permission_denied": "You do not have permission to perform this action.",
    "not_found": "No API resource at this address.",
    "method_not_allowed": "This method is not allowed here.",
    "too_large": "The body is over the upload limit.",
    "server_error": "Something went wrong on our side; it has been logged.",
}


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _json(request, 400, "bad_request", "The request could not be understood.")
    return defaults.bad_request(request, exception)


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _json(request, 403, "permission_denied", "You do not have permission to perform this action.")
    return defaults.permission_denied(request, exception)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _json(request, 404, "not_found", "No API resource at this address.")
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return _json(request, 500, "server_error", "Something went wrong on our side; it has been logged.")
    return defaults.server_error(request)
