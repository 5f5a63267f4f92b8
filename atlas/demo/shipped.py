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


def sidecar_fingerprint(path: Path) -> str:
    """The data fingerprint a model file's JSON sidecar records, "" when there is none. It wins
    over the one inside the file: sidecars are what prepare_demo matches, and the shipped ones
    were re-keyed when procedural images got their own identity (docs/dermgan.md, "Choices")."""
    try:
        value = json.loads(Path(path).with_suffix(".json").read_text()).get("data_fingerprint", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def sidecar_fingerprint_apply(meta: dict, path: Path) -> dict:
    """A loaded model's metadata with its sidecar's fingerprint, so reports, descriptions and
    registered rows all name the one prepare_demo matched; the file's own is kept beside it."""
    found = sidecar_fingerprint(path)
    if found and found != meta.get("data_fingerprint"):
        meta["data_fingerprint_in_file"] = meta.get("data_fingerprint", "")
        meta["data_fingerprint"] = found
    return meta
