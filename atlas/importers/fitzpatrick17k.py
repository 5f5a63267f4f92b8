"""Fitzpatrick17k (Groh et al. 2021): `fitzpatrick17k.csv`, images named by `md5hash`.

Columns: md5hash, fitzpatrick_scale, fitzpatrick_centaur, label, nine_partition_label,
three_partition_label, qc, url, url_alphanum. Skin types are 1-6, -1 = unknown; they come from
two annotation services (Scale AI, Centaur Labs) judging the photograph, so they are stored as
"estimated". Rows whose qc says "3 Wrongly labelled" are dropped and counted.
"""

from __future__ import annotations

from pathlib import Path

from atlas.importers.base import DatasetFormat, ImportRow, RowOutcome, SkippedRow, label_key, read_csv
from atlas.skin import parse_fitzpatrick

REQUIRED = ("md5hash", "fitzpatrick_scale", "fitzpatrick_centaur", "label", "qc")


def read(metadata_path: Path) -> list[RowOutcome]:
    _, rows = read_csv(metadata_path, REQUIRED)
    return [_outcome(number, row) for number, row in rows]


def _outcome(number: int, row: dict[str, str]) -> RowOutcome:
    if row["qc"].lower().startswith("3"):
        return SkippedRow(number, "wrongly_labelled", f"quality control says {row['qc']!r}")
    try:
        scale = parse_fitzpatrick(row["fitzpatrick_scale"])
        centaur = parse_fitzpatrick(row["fitzpatrick_centaur"])
    except ValueError as exc:
        return SkippedRow(number, "bad_skin_type", str(exc))
    skin_type = scale if scale is not None else centaur  # the Scale AI label first, as the paper does
    url = row.get("url", "")
    return ImportRow(
        row=number,
        image_ref=row["md5hash"],
        label=label_key(row["label"]),
        fitzpatrick_type=skin_type,
        fitzpatrick_label_source="estimated" if skin_type else "",
        external_id=row["md5hash"],
        attribution=f"{FORMAT.attribution}; original image: {url}" if url else FORMAT.attribution,
        details={
            "fitzpatrick_scale": row["fitzpatrick_scale"],
            "fitzpatrick_centaur": row["fitzpatrick_centaur"],
            "qc": row["qc"],
            "url": url,
        },
    )


FORMAT = DatasetFormat(
    name="fitzpatrick17k",
    title="Fitzpatrick17k",
    read=read,
    source_name="Fitzpatrick17k",
    licence="CC-BY-NC-SA-3.0",
    allows_generative_training=False,
    url="https://github.com/mattgroh/fitzpatrick17k",
    attribution="Fitzpatrick17k, Groh et al. 2021 (images from DermaAmin and Atlas Dermatológico)",
)
