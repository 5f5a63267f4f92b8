"""JSON rendering with orjson: the bytes DRF's JSONRenderer writes, several times faster.

orjson writes what json.dumps(ensure_ascii=False, separators=(",", ":")) writes for the types
the API answers with (dicts, lists, str, int, float, bool, None, UUID). Everything else
(datetimes: DRF writes "Z" for UTC, orjson "+00:00"; decimals, lazy strings, numpy values) goes
through DRF's own encoder, and whatever orjson refuses (an integer beyond 64 bits, a key that is
not a string, an indent asked for) is rendered by DRF's renderer. Two differences remain, both
in spelling only: floats below 1e-4 are written 0.000012 (json: 1.2e-05; the same number), and
NaN becomes null where DRF's strict JSON raises (the API has no NaN to send).
"""

from __future__ import annotations

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_FALLBACK = JSONEncoder()
# DRF escapes these two (valid JSON, but not valid JavaScript inside a <script>).
_LINE_SEPARATORS = ("\u2028".encode(), "\u2029".encode())


def _default(value):
    return _FALLBACK.default(value)


class OrjsonRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            text = orjson.dumps(data, default=_default, option=_OPTIONS)
        except (orjson.JSONEncodeError, TypeError, ValueError):
            return super().render(data, accepted_media_type, renderer_context)
        for separator in _LINE_SEPARATORS:
            if separator in text:
                text = text.replace(separator, separator.decode().encode("unicode_escape"))
        return text
