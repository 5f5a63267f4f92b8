"""The search app's domain errors; the API and the pages translate them to HTTP."""

from __future__ import annotations


class SearchError(ValueError):
    """Bad input to a search (empty or over-long query, bad filter, unusable upload)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SearchUnavailable(RuntimeError):
    """Search cannot answer now (no model, nothing indexed): a 503, not the caller's fault."""

