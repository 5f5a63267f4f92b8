"""Importing a public dataset (or our own manifest) into the catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from django.db.models import Q
from django.utils.text import slugify

from atlas.importers.base import ImportFileError, ImportRow, RowOutcome, label_key
from atlas.importers.registry import get_format
from atlas.importers.runner import ImportReport, import_rows
from atlas.models import Condition, ConditionLabelMapping, Source
from atlas.services.conditions import conditions_for_unmapped_labels

__all__ = ["ImportFileError", "ImportReport", "dataset_import"]


def dataset_import(
    *,
    format: str,
    metadata_path: Path,
    images_dir: Path,
    source_name: str | None = None,
    licence: str | None = None,
    allow_generative_training: bool = False,
    private: bool = False,
    limit: int | None = None,
    create_unmapped_conditions: bool = False,
    progress: TextIO | None = None,
) -> ImportReport:
    """Read FORMAT's metadata, then ingest each row's image under one Source.

    Raises ImportFileError (and imports nothing, creates no Source) when the metadata cannot be
    read at all: unknown format, missing file or folder, a required column missing. Problems
    with single rows are reported in the ImportReport and the import goes on.

    create_unmapped_conditions: a label no mapping covers gets a condition needing curation
    (atlas.services.conditions) and its rows are imported under it, instead of being left out.
    """
    dataset = get_format(format)
    if dataset.name != "manifest" and allow_generative_training:
        raise ImportFileError(f"--allow-generative-training is for manifest imports; {dataset.name} follows its licence")
    if limit is not None and limit < 1:
        raise ImportFileError("--limit must be at least 1")
    if not metadata_path.is_file():
        raise ImportFileError(f"metadata file not found: {metadata_path}")
    if not images_dir.is_dir():
        raise ImportFileError(f"images folder not found: {images_dir}")
    name = source_name or dataset.source_name
    if not name:
        raise ImportFileError(f"{dataset.name} imports need --source NAME")
    _check_source_terms(name, licence, dataset.licence)

    outcomes = _first_rows(dataset.read(metadata_path), limit)  # every file error is raised before any write
    source, created = _source_get_or_create(
        name=name,
        licence=licence or dataset.licence,
        allows_generative_training=allow_generative_training if dataset.name == "manifest" else dataset.allows_generative_training,
        url=dataset.url,
        description=f"Imported from {dataset.title}. {dataset.attribution}".strip(),
    )
    report = ImportReport(
        format=dataset.name,
        source=source.name,
        licence=source.licence,
        allows_generative_training=source.allows_generative_training,
        source_created=created,
    )
    conditions = _label_conditions(dataset.name)
    if create_unmapped_conditions:
        unmapped = {label_key(o.label) for o in outcomes if isinstance(o, ImportRow) and o.label.strip()} - set(conditions)
        created = conditions_for_unmapped_labels(dataset=dataset.name, labels=unmapped)
        conditions.update(created)
        report.curation = {label: condition.slug for label, condition in created.items()}
    return import_rows(
        outcomes=outcomes,
        images_dir=images_dir,
        conditions=conditions,
        source=source,
        is_public=dataset.is_public and not private,
        report=report,
        attribution=dataset.attribution,
        progress=progress,
    )


def _first_rows(outcomes: list[RowOutcome], limit: int | None) -> list[RowOutcome]:
    if limit is None:
        return outcomes
    kept = set(sorted({outcome.row for outcome in outcomes})[:limit])
    return [outcome for outcome in outcomes if outcome.row in kept]


def _check_source_terms(name: str, licence: str | None, default_licence: str) -> None:
    existing = Source.objects.filter(Q(name=name) | Q(slug=slugify(name))).first()
    if existing is None:
        if not (licence or default_licence):
            raise ImportFileError(f"source {name!r} is new: give its licence with --licence")
        return
    if existing.name != name:
        raise ImportFileError(f"source name {name!r} clashes with the existing source {existing.name!r}")
    if licence and licence != existing.licence:
        raise ImportFileError(
            f"source {name!r} already exists with licence {existing.licence}, not {licence}; "
            "change it in the admin or choose another --source"
        )


def _source_get_or_create(
    *, name: str, licence: str, allows_generative_training: bool, url: str, description: str
) -> tuple[Source, bool]:
    return Source.objects.get_or_create(
        name=name,
        defaults={
            "slug": slugify(name)[:64] or "source",
            "licence": licence,
            "allows_generative_training": allows_generative_training,
            "url": url,
            "description": description,
        },
    )


def _label_conditions(dataset: str) -> dict[str, Condition]:
    """label -> Condition for this dataset; a manifest also accepts our slugs, names and synonyms."""
    conditions: dict[str, Condition] = {}
    if dataset == "manifest":
        for condition in Condition.objects.all():
            for name in (condition.slug, *condition.all_names):
                conditions.setdefault(label_key(name), condition)
    for mapping in ConditionLabelMapping.objects.filter(dataset=dataset).select_related("condition"):
        conditions[label_key(mapping.label)] = mapping.condition
    return conditions
