"""HAM10000 (Tschandl et al. 2018): `HAM10000_metadata.csv`, images `<image_id>.jpg` in any subfolder.

Columns: lesion_id, image_id, dx, dx_type, age, sex, localization. No skin type: dermatoscopic
images of (mostly) light skin from Vienna and Queensland.
"""

from __future__ import annotations

from pathlib import Path

from atlas.importers.base import DatasetFormat, ImportRow, RowOutcome, label_key, read_csv

REQUIRED = ("lesion_id", "image_id", "dx", "dx_type", "localization")


def read(metadata_path: Path) -> list[RowOutcome]:
    _, rows = read_csv(metadata_path, REQUIRED)
    return [
        ImportRow(
            row=number,
            image_ref=row["image_id"],
            label=label_key(row["dx"]),
            body_site="" if row["localization"].lower() in ("", "unknown") else row["localization"],
            case_id=row["lesion_id"],  # several images of one lesion share it
            external_id=row["image_id"],
            details={"dx_type": row["dx_type"]},
        )
        for number, row in rows
    ]


FORMAT = DatasetFormat(
    name="ham10000",
    title="HAM10000",
    read=read,
    source_name="HAM10000",
    licence="CC-BY-NC-4.0",
    allows_generative_training=False,
    url="https://doi.org/10.7910/DVN/DBW86T",
    attribution="HAM10000, Tschandl, Rosendahl and Kittler 2018 (ViDIR Group, Medical University of Vienna)",
)
