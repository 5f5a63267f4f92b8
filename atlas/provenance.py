"""What of an image's provenance may leave the server: one function for the API, the pages and
exports, so a server detail (a file path) can never reach public output through one of them.

Keys named in PRIVATE_KEYS are dropped; any other string that looks like an absolute file path
(older images recorded `checkpoint_path`; future keys might hold one) is cut to its file name.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath

# The copy gate's nearest real crops are named for reviewers; the image named may be hidden.
PRIVATE_KEYS = frozenset({"checkpoint_path", "nearest", "hash_nearest"})
# /a/b..., ~/a..., C:\a... or C:/a... ; not URLs (scheme://) and not "1/2"-style text.
_ABSOLUTE_PATH = re.compile(r"^(?:/|~/|[A-Za-z]:[\\/])[^\s]*[\\/][^\s]*$")


def looks_like_server_path(text: str) -> bool:
    return bool(_ABSOLUTE_PATH.match(text.strip()))


def public_provenance(provenance: dict | None) -> dict:
    """A copy of `provenance` fit for public output (see module doc)."""
    return _scrub(provenance or {})


def _scrub(value):
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items() if key not in PRIVATE_KEYS}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, str) and looks_like_server_path(value):
        return _file_name(value)
    return value


def _file_name(path: str) -> str:
    name = PureWindowsPath(path).name if "\\" in path else PurePosixPath(path).name
    return name or "(server path withheld)"
