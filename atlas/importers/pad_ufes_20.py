"""PAD-UFES-20 (Pacheco et al. 2020): `metadata.csv`, smartphone photographs `<img_id>` in any subfolder.

Columns used: patient_id, lesion_id, fitspatrick (sic), region, diagnostic (ACK, BCC, MEL, NEV,
SCC, SEK), img_id; biopsed is kept when present. The skin type was recorded by the clinicians
of the PAD programme at the consultation, stored as "dermatologist".
"""

from __future__ import annotations

from pathlib import Path

from atlas.importers.base import DatasetFormat, ImportRow, RowOutcome, SkippedRow, label_key, read_csv
from atlas.skin import parse_fitzpatrick

REQUIRED = ("patient_id", "lesion_id", "fitspatrick", "region", "diagnostic", "img_id")


def read(metadata_path: Path) -> list[RowOutcome]:
    _, rows = read_csv(metadata_path, REQUIRED)
    return [_outcome(number, row) for number, row in rows]


def _outcome(number: int, row: dict[str, str]) -> RowOutcome:
    try:
        skin_type = parse_fitzpatrick(row["fitspatrick"])
    except ValueError as exc:
        return SkippedRow(number, "bad_skin_type", str(exc))
    return ImportRow(
        row=number,
        image_ref=row["img_id"],
        label=label_key(row["diagnostic"]),
        fitzpatrick_type=skin_type,
        fitzpatrick_label_source="dermatologist" if skin_type else "",
        body_site=row["region"].lower(),
        case_id=row["patient_id"],
        external_id=row["img_id"],
        details={"lesion_id": row["lesion_id"], "biopsed": row.get("biopsed", "")},
    )


FORMAT = DatasetFormat(
    name="pad-ufes-20",
    title="PAD-UFES-20",
    read=read,
    source_name="PAD-UFES-20",
    licence="CC-BY-4.0",
    allows_generative_training=True,
    url="https://data.mendeley.com/datasets/zr7vgbcyr2/1",
    attribution="PAD-UFES-20, Pacheco et al. 2020 (Federal University of Espírito Santo)",
)
