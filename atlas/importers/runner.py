"""The loop every format shares: map the label, find the file, ingest, count.

Each image goes through `image_ingest` in its own transaction, so an import stopped half-way
keeps what it stored and a re-run reports those images as duplicates instead of adding them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from atlas.importers.base import ImageFinder, ImportRow, RowOutcome, SkippedRow, label_key
from atlas.models import Condition, Source
from atlas.services.ingestion import IngestionError, image_ingest

DETAILS_SHOWN_PER_REASON = 20


@dataclass
class ImportReport:
    format: str
    source: str
    licence: str
    allows_generative_training: bool
    source_created: bool = False
    rows: int = 0  # metadata rows read (after --limit)
    images: int = 0  # images the rows named
    imported: int = 0
    duplicates: int = 0  # already in the catalogue (same pixels): nothing stored
    estimated_skin_types: int = 0  # imported with an unknown type, labelled from the measured skin colour
    skipped: list[SkippedRow] = field(default_factory=list)
    unmapped: Counter = field(default_factory=Counter)  # label -> rows not imported for want of a mapping
    # label -> slug of the condition needing curation its rows were filed under (--create-unmapped-conditions)
    curation: dict[str, str] = field(default_factory=dict)
    curation_rows: Counter = field(default_factory=Counter)  # label -> rows filed under its new condition
    unknown_skin_type_rows: set[int] = field(default_factory=set)  # imported rows no skin-type column had a type for

    def skipped_by_reason(self) -> Counter:
        return Counter(skip.reason for skip in self.skipped)

    def summary_lines(self) -> list[str]:
        training = "allowed" if self.allows_generative_training else "not allowed"
        created = " (created)" if self.source_created else ""
        lines = [
            f"{self.format}: source {self.source!r}{created}, licence {self.licence}, generative training {training}",
            f"rows read:  {self.rows}, naming {self.images} images",
            f"imported:   {self.imported}",
            f"duplicates: {self.duplicates} (already in the catalogue; nothing stored)",
            f"skipped:    {len(self.skipped)}",
        ]
        for reason, count in sorted(self.skipped_by_reason().items()):
            lines.append(f"  {reason}: {count}")
            rows = [skip for skip in self.skipped if skip.reason == reason]
            lines.extend(f"    row {skip.row}: {skip.message}" for skip in rows[:DETAILS_SHOWN_PER_REASON])
            if len(rows) > DETAILS_SHOWN_PER_REASON:
                lines.append(f"    ... and {len(rows) - DETAILS_SHOWN_PER_REASON} more")
        lines.append(
            f"skin type unknown in every column: {_rows(len(self.unknown_skin_type_rows))} imported "
            f"({self.estimated_skin_types} given a type estimated from the skin colour, the rest stored with none)"
        )
        if self.curation:
            lines.append(
                f"conditions needing curation: {len(self.curation)} labels, {_rows(sum(self.curation_rows.values()))} "
                "filed under them (hidden from the public until a curator accepts or merges them in the admin)"
            )
            lines.extend(f"  {label!r} -> {slug}: {self.curation_rows[label]}" for label, slug in sorted(self.curation.items()))
        lines.append(f"unmapped labels: {len(self.unmapped)} ({_rows(sum(self.unmapped.values()))} not imported)")
        lines.extend(f"  {label!r}: {count}" for label, count in self.unmapped.most_common())
        if self.unmapped:
            lines.append(f"  map them in the admin (Condition label mappings, dataset {self.format!r}) and re-run")
        return lines


def import_rows(
    *,
    outcomes: list[RowOutcome],
    images_dir: Path,
    conditions: dict[str, Condition],
    source: Source,
    is_public: bool,
    report: ImportReport,
    attribution: str = "",
    progress: TextIO | None = None,
) -> ImportReport:
    report.rows = len({outcome.row for outcome in outcomes})
    rows = [outcome for outcome in outcomes if isinstance(outcome, ImportRow)]
    report.skipped.extend(outcome for outcome in outcomes if isinstance(outcome, SkippedRow))
    report.images = len(rows)
    finder = ImageFinder(images_dir)
    unmapped_rows: set[tuple[str, int]] = set()
    curated_rows: set[tuple[str, int]] = set()
    bar = tqdm(rows, desc=f"import {report.format}", unit="img", file=progress, disable=progress is None, mininterval=0.5)
    for row in bar:
        condition = conditions.get(label_key(row.label))
        if condition is None:
            unmapped_rows.add((label_key(row.label), row.row))  # a SCIN case counts once, not per image
            continue
        skip = _import_one(
            row, condition=condition, finder=finder, source=source, is_public=is_public, attribution=attribution, report=report
        )
        if skip is not None:
            report.skipped.append(skip)
        elif label_key(row.label) in report.curation:
            curated_rows.add((label_key(row.label), row.row))
    bar.close()
    report.unmapped.update(label for label, _ in unmapped_rows)
    report.curation_rows.update(label for label, _ in curated_rows)
    report.skipped.sort(key=lambda skip: skip.row)
    return report


def _import_one(
    row: ImportRow,
    *,
    condition: Condition,
    finder: ImageFinder,
    source: Source,
    is_public: bool,
    attribution: str,
    report: ImportReport,
) -> SkippedRow | None:
    if row.licence and source.allows_generative_training and _forbids_training(row.licence):
        return SkippedRow(
            row.row,
            "licence_conflict",
            f"licence {row.licence} does not allow generative training but source {source.name!r} does; "
            "import it under a source that does not",
        )
    path = finder.find(row.image_ref, exact_path=row.exact_path)
    if path is None and finder.is_outside(row.image_ref):
        return SkippedRow(row.row, "missing_file", f"image {row.image_ref!r} lies outside the images folder {finder.root}")
    if path is None:
        return SkippedRow(row.row, "missing_file", f"image {row.image_ref!r} not found under {finder.root}")
    try:
        with path.open("rb") as handle:
            result = image_ingest(
                file=handle,
                condition=condition,
                source=source,
                fitzpatrick_type=row.fitzpatrick_type,
                fitzpatrick_label_source=row.fitzpatrick_label_source,
                monk_tone=row.monk_tone,
                body_site=row.body_site,
                licence=row.licence,
                attribution=row.attribution or attribution,
                case_id=row.case_id,
                external_id=row.external_id,
                regions=row.boxes,
                provenance={"dataset": report.format, "row": row.row, "label": row.label, **row.details},
                is_public=is_public,
                estimate_skin_type=True,  # never overrides a type the row gives
                skin_type_range=_range(row.details.get("fitzpatrick_range")),
            )
    except IngestionError as exc:
        return SkippedRow(row.row, exc.code, f"{path.name}: {exc.message}")
    except OSError as exc:
        return SkippedRow(row.row, "unreadable_file", f"{path.name}: {exc.strerror or exc}")
    if result.created:
        report.imported += 1
        if row.fitzpatrick_type is None:
            report.unknown_skin_type_rows.add(row.row)
        if row.fitzpatrick_type is None and result.image.fitzpatrick_type is not None:
            report.estimated_skin_types += 1
    else:
        report.duplicates += 1
    return None


def _range(pair) -> tuple[int, int] | None:
    """A dataset's (low, high) skin-type range, e.g. DDI's [5, 6]; None when it gives none."""
    return (min(pair), max(pair)) if isinstance(pair, (list, tuple)) and len(pair) == 2 else None


def _forbids_training(licence: str) -> bool:
    """NC and ND terms (and any licence naming "noai") keep an image away from the GAN."""
    parts = licence.upper().replace("_", "-").replace(" ", "-").split("-")
    return bool({"NC", "ND", "NOAI"} & set(parts))


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"
