"""What every dataset format shares: the row types a parser yields, CSV reading with column
checks, and finding image files under the images folder.

Parsers read metadata only; they never touch the database or decode an image. The runner
(`atlas.importers.runner`) turns their rows into catalogue images through `image_ingest`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from atlas.services.ingestion import Box


class ImportFileError(ValueError):
    """The metadata cannot be imported at all (missing file or column, unknown format). Nothing was imported."""


@dataclass(frozen=True)
class ImportRow:
    """One image to ingest, as described by one metadata row (a SCIN case gives up to three)."""

    row: int  # the row number a spreadsheet shows: the header is row 1
    image_ref: str  # file name, stem or relative path under the images folder
    label: str  # the dataset's label, lower-cased; mapped to a Condition by the runner
    fitzpatrick_type: int | None = None
    fitzpatrick_label_source: str = ""
    monk_tone: int | None = None
    body_site: str = ""
    case_id: str = ""
    external_id: str = ""
    licence: str = ""  # empty: the source's licence
    attribution: str = ""
    boxes: tuple[Box, ...] = ()
    details: dict = field(default_factory=dict)  # kept in Image.provenance: where the row came from
    exact_path: bool = False  # image_ref is a path relative to the images folder, never searched by name


@dataclass(frozen=True)
class SkippedRow:
    row: int
    reason: str  # a stable code: missing_file, corrupt, wrongly_labelled, bad_skin_type, ...
    message: str


RowOutcome = ImportRow | SkippedRow


@dataclass(frozen=True)
class DatasetFormat:
    """A registered format: how to read it and the terms its images come under by default."""

    name: str  # the command's FORMAT argument and ConditionLabelMapping.dataset
    title: str
    read: Callable[[Path], list[RowOutcome]]
    source_name: str  # the Source created when --source is not given
    licence: str  # SPDX id, or LicenseRef-... for a dataset's own terms
    allows_generative_training: bool
    url: str
    attribution: str
    is_public: bool = True  # False where the terms forbid redistribution


def read_csv(path: Path, required: Sequence[str]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Read a CSV with a header; refuse it whole when a required column is missing.

    Returns the header and (row number, row) pairs; values are stripped strings, never None.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in (reader.fieldnames or [])]
            missing = [name for name in required if name not in header]
            if missing:
                names = ", ".join(repr(name) for name in missing)
                plural = "s" if len(missing) > 1 else ""
                raise ImportFileError(
                    f"{path.name} is missing the required column{plural} {names} "
                    f"(its columns are: {', '.join(header) or 'none'}); nothing was imported"
                )
            reader.fieldnames = header
            rows = [
                (number, {key: (value or "").strip() for key, value in row.items() if key is not None})
                for number, row in enumerate(reader, start=2)
            ]
    except FileNotFoundError:
        raise ImportFileError(f"metadata file not found: {path}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportFileError(f"{path.name} is not a readable UTF-8 CSV file: {exc}") from None
    return header, rows


def label_key(label: str) -> str:
    """How labels are compared: lower-case, single spaces (as ConditionLabelMapping stores them)."""
    return " ".join(label.strip().lower().split())


class ImageFinder:
    """Finds a row's image under the images folder: by relative path, by file name, or by stem.

    Datasets ship their images in nested folders (HAM10000 in two parts, PAD-UFES-20 in three),
    so names are indexed once over the whole tree. Every path is resolved (symlinks followed)
    before it is returned, and nothing that resolves outside the folder ever is: a symlink named
    like a dataset file but pointing elsewhere is refused, not imported.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._by_name: dict[str, Path] | None = None
        self._by_stem: dict[str, Path] = {}
        self._outside: set[str] = set()  # names and stems of links that lead out of the folder

    def find(self, ref: str, *, exact_path: bool = False) -> Path | None:
        if not ref:
            return None
        candidate = self._inside(self.root / ref)
        if candidate is not None:
            return candidate
        if exact_path:
            return None
        self._build_index()
        name = Path(ref).name
        return self._by_name.get(name) or self._by_stem.get(name)

    def is_outside(self, ref: str) -> bool:
        if not (self.root / ref).resolve().is_relative_to(self.root):
            return True
        self._build_index()
        name = Path(ref).name
        return name in self._outside and name not in self._by_name and name not in self._by_stem

    def _inside(self, path: Path) -> Path | None:
        """The resolved path when it is a regular file inside the folder, else None."""
        resolved = path.resolve()
        return resolved if resolved.is_relative_to(self.root) and resolved.is_file() else None

    def _build_index(self) -> None:
        if self._by_name is not None:
            return
        self._by_name = {}
        # os.walk does not descend into linked folders (followlinks=False); linked files are
        # listed, and resolved here like everything else.
        for folder, dirs, files in os.walk(self.root):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder) / name
                resolved = self._inside(path)
                if resolved is None:
                    self._outside.update((name, path.stem))
                    continue
                self._by_name.setdefault(name, resolved)
                self._by_stem.setdefault(path.stem, resolved)
