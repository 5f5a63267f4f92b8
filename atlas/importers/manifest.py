"""Our own CSV format for any collection (documented in docs/importers.md).

Columns: path and condition are required; fitzpatrick_type, fitzpatrick_label_source, monk_tone,
boxes, licence, attribution, body_site, case_id and external_id are optional.

- path: relative to the --images folder (never outside it).
- condition: one of our slugs, names or synonyms, or a label mapped for dataset "manifest".
- fitzpatrick_type: 1-6, I-VI, FST1-FST6; empty = unknown. When given, fitzpatrick_label_source
  (dermatologist, self_reported, estimated) is required.
- boxes: regions of interest in the upright image's pixels, "x,y,w,h" separated by ";".
"""

from __future__ import annotations

from pathlib import Path

from atlas.importers.base import DatasetFormat, ImportRow, RowOutcome, SkippedRow, read_csv
from atlas.services.ingestion import Box
from atlas.skin import parse_fitzpatrick

REQUIRED = ("path", "condition")
LABEL_SOURCES = ("dermatologist", "self_reported", "estimated")


class RowError(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def read(metadata_path: Path) -> list[RowOutcome]:
    _, rows = read_csv(metadata_path, REQUIRED)
    outcomes: list[RowOutcome] = []
    for number, row in rows:
        try:
            outcomes.append(_row(number, row))
        except RowError as exc:
            outcomes.append(SkippedRow(number, exc.reason, str(exc)))
    return outcomes


def _row(number: int, row: dict[str, str]) -> ImportRow:
    if not row["path"]:
        raise RowError("missing_file", "the path column is empty")
    skin_type, label_source = _skin_type(row)
    return ImportRow(
        row=number,
        image_ref=row["path"],
        exact_path=True,
        label=row["condition"],
        fitzpatrick_type=skin_type,
        fitzpatrick_label_source=label_source,
        monk_tone=_monk(row.get("monk_tone", "")),
        boxes=parse_boxes(row.get("boxes", "")),
        licence=row.get("licence", ""),
        attribution=row.get("attribution", ""),
        body_site=row.get("body_site", ""),
        case_id=row.get("case_id", ""),
        external_id=row.get("external_id", "") or row["path"],
    )


def parse_boxes(text: str) -> tuple[Box, ...]:
    """ "x,y,w,h;x,y,w,h" -> boxes. Whole pixels only; the ingestion service checks the image bounds."""
    boxes = []
    for number, part in enumerate(filter(None, (p.strip() for p in text.split(";"))), start=1):
        values = [v.strip() for v in part.split(",")]
        if len(values) != 4 or not all(v.lstrip("-").isdigit() for v in values):
            raise RowError("bad_boxes", f"box {number} {part!r} is not 'x,y,w,h' in whole pixels")
        boxes.append(Box(*(int(v) for v in values)))
    return tuple(boxes)


def _skin_type(row: dict[str, str]) -> tuple[int | None, str]:
    try:
        skin_type = parse_fitzpatrick(row.get("fitzpatrick_type", ""))
    except ValueError as exc:
        raise RowError("bad_skin_type", str(exc)) from None
    label_source = row.get("fitzpatrick_label_source", "").lower().replace("-", "_").replace(" ", "_")
    if skin_type is None:
        return None, ""
    if label_source not in LABEL_SOURCES:
        raise RowError(
            "bad_skin_type",
            f"fitzpatrick_label_source must be one of {', '.join(LABEL_SOURCES)} when a type is given, "
            f"not {label_source!r}",
        )
    return skin_type, label_source


def _monk(text: str) -> int | None:
    if not text:
        return None
    if text.isdigit() and 1 <= int(text) <= 10:
        return int(text)
    raise RowError("bad_skin_type", f"monk_tone must be 1-10, not {text!r}")


FORMAT = DatasetFormat(
    name="manifest",
    title="Atlas manifest CSV",
    read=read,
    source_name="",  # --source is required: a manifest describes someone's own collection
    licence="",  # --licence is required when the source is new
    allows_generative_training=False,  # --allow-generative-training turns it on
    url="",
    attribution="",
)
