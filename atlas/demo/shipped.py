"""Models shipped in the repository for the demo (GAN, condition classifier, search model).

Each file has a JSON sidecar recording the data fingerprint it was trained on; it is used only
when the catalogue's fingerprint is the same, so a changed catalogue never gets a stale model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def shipped_matches(shipped: Path, fingerprint: str) -> bool:
    """The shipped file and its sidecar exist, and the sidecar names this data fingerprint."""
    meta = shipped.with_suffix(".json")
    return shipped.exists() and meta.exists() and json.loads(meta.read_text())["data_fingerprint"] == fingerprint


def shipped_install(*, shipped: Path, target: Path, fingerprint: str) -> bool:
    """Copy the shipped file and its sidecar to `target` when they fit `fingerprint`; else copy
    nothing and return False."""
    if not shipped_matches(shipped, fingerprint):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shipped, target)
    shutil.copyfile(shipped.with_suffix(".json"), target.with_suffix(".json"))
    return True
