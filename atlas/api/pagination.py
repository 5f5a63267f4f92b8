"""Cursor pagination: stable under inserts (new images never shift a page), opaque `cursor`."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from atlas.api.errors import ApiError


_INVALID = object()


def _is_id(position: str) -> bool:
    return position.isascii() and position.isdigit() and int(position) < 2**63


class AtlasCursorPagination(CursorPagination):
    ordering = "-id"  # unique and follows creation order, so no page repeats or skips a row
    page_size_query_param = "page_size"

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return settings.API_PAGE_SIZE
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= settings.API_MAX_PAGE_SIZE:
            raise ApiError("invalid_page_size", f"page_size must be a whole number from 1 to {settings.API_MAX_PAGE_SIZE}")
        return int(raw)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            cursor = _INVALID
        # DRF checks the offset but not the position, which goes straight into `id < position`:
        # a hand-made cursor with "p=abc" would be a database error (500), so check it here.
        if cursor is _INVALID or (cursor is not None and cursor.position is not None and not _is_id(cursor.position)):
            raise ApiError("invalid_cursor", "The cursor is not one this API handed out; start from the first page.")
        return cursor

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": settings.API_MAX_PAGE_SIZE}
        return parameters
