"""Cursor pagination: stable under inserts (new images never shift a page), opaque `cursor`."""

from __future__ import annotations

import re

from django.conf import settings
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.utils.urls import replace_query_param

from atlas.api.errors import ApiError


# A cursor: direction (n = next, r = reverse), the last id seen, and how many rows with that
# id to skip. Written plainly instead of DRF's base64 so that the schema's pattern is exactly
# what the API accepts: every string matching it is a cursor that works.
CURSOR_PATTERN = r"^[nr](?:[0-9]{1,18})?(?:-[0-9]{1,4})?$"
_CURSOR = re.compile(r"^(?P<direction>[nr])(?P<position>[0-9]{1,18})?(?:-(?P<offset>[0-9]{1,4}))?$")


class AtlasCursorPagination(CursorPagination):
    ordering = "-id"  # unique and follows creation order, so no page repeats or skips a row
    page_size_query_param = "page_size"

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return settings.API_PAGE_SIZE
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= settings.API_MAX_PAGE_SIZE:
            raise ApiError("invalid_page_size", f"page_size must be a whole number from 1 to {settings.API_MAX_PAGE_SIZE}")
        return int(raw)

    def decode_cursor(self, request) -> Cursor | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        match = _CURSOR.match(encoded)
        if match is None:
            raise ApiError("invalid_cursor", "The cursor is not one this API handed out; start from the first page.")
        offset = min(int(match["offset"] or 0), self.offset_cutoff)
        return Cursor(offset=offset, reverse=match["direction"] == "r", position=match["position"])

    def encode_cursor(self, cursor: Cursor) -> str:
        encoded = ("r" if cursor.reverse else "n") + (cursor.position or "") + (f"-{cursor.offset}" if cursor.offset else "")
        return replace_query_param(self.base_url, self.cursor_query_param, encoded)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": settings.API_MAX_PAGE_SIZE}
            if parameter["name"] == self.cursor_query_param:
                parameter["schema"] = {"type": "string", "pattern": CURSOR_PATTERN}
                parameter["description"] = "The cursor from a page's `next` or `previous` link."
        return parameters
