"""Diverse Dermatology Images (Daneshjou et al. 2022): `ddi_metadata.csv`.

Columns: (an unnamed index), DDI_ID, DDI_file, skin_tone, malignant, disease. `skin_tone` is a
pair of Fitzpatrick types, 12 / 34 / 56, assigned by dermatologists. One type cannot be chosen
honestly from a pair, so fitzpatrick_type stays empty and the pair is kept in the provenance
(`fitzpatrick_range`); see docs/importers.md. The DDI terms forbid redistribution, so the
images are imported as not public.
"""

from __future__ import annotations

from pathlib import Path

from atlas.importers.base import DatasetFormat, ImportRow, RowOutcome, SkippedRow, label_key, read_csv

REQUIRED = ("DDI_ID", "DDI_file", "skin_tone", "disease")
SKIN_TONE_RANGES = {"12": [1, 2], "34": [3, 4], "56": [5, 6]}


def read(metadata_path: Path) -> list[RowOutcome]:
    _, rows = read_csv(metadata_path, REQUIRED)
    return [_outcome(number, row) for number, row in rows]


def _outcome(number: int, row: dict[str, str]) -> RowOutcome:
    tone = row["skin_tone"].removesuffix(".0")
    if tone not in SKIN_TONE_RANGES:
        return SkippedRow(number, "bad_skin_type", f"skin_tone must be 12, 34 or 56, not {row['skin_tone']!r}")
    return ImportRow(
        row=number,
        image_ref=row["DDI_file"],
        label=label_key(row["disease"]),
        external_id=row["DDI_ID"],
        details={
            "skin_tone": tone,
            "fitzpatrick_range": SKIN_TONE_RANGES[tone],
            "fitzpatrick_range_source": "dermatologist",
            "malignant": row.get("malignant", ""),
        },
    )


FORMAT = DatasetFormat(
    name="ddi",
    title="Diverse Dermatology Images (DDI)",
    read=read,
    source_name="DDI",
    licence="LicenseRef-DDI-Research-Use-Agreement",
    allows_generative_training=False,
    url="https://ddi-dataset.github.io/",
    attribution="Diverse Dermatology Images, Daneshjou et al. 2022 (Stanford AIMI)",
    is_public=False,
)
