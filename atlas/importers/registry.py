"""The formats `import_dataset` knows, by name."""

from __future__ import annotations

from atlas.importers import ddi, fitzpatrick17k, ham10000, manifest, pad_ufes_20, scin
from atlas.importers.base import DatasetFormat, ImportFileError

FORMATS: dict[str, DatasetFormat] = {
    module.FORMAT.name: module.FORMAT for module in (manifest, fitzpatrick17k, ham10000, ddi, scin, pad_ufes_20)
}


def get_format(name: str) -> DatasetFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ImportFileError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}") from None
