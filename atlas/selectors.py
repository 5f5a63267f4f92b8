"""Reads of the catalogue that pages, commands and the gap filler share.

The coverage matrix counts real and synthetic images per (condition x Fitzpatrick type) in one
aggregate query; everything else here is a small, named read the pages need.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count, Expression, Q, QuerySet, TextField

from atlas.filters import ImageFilters, images_filtered
from atlas.models import Condition, Image, Region, Source, pending_review_q, public_q
from atlas.skin import FITZPATRICK_TYPES, roman

# Columns of the matrix: Fitzpatrick I-VI, then images whose skin type nobody labelled.
SKIN_COLUMNS: tuple[int | None, ...] = (*FITZPATRICK_TYPES, None)
HEAT_LEVELS = 5  # non-empty cells get a level 1..HEAT_LEVELS on a log scale; empty cells 0


def skin_key(skin_type: int | None) -> str:
    """How a column is written in URLs and JSON: "1".."6" or "unknown"."""
    return "unknown" if skin_type is None else str(skin_type)


@dataclass(frozen=True)
class CoverageCell:
    condition: Condition | None  # None on the totals row
    skin_type: int | None  # None: skin type unknown
    real: int
    synthetic: int
    level: int = 0  # heat level 0..HEAT_LEVELS, relative to the fullest cell of its matrix
    pending: int = 0  # synthetic images waiting for review: shown apart, never in the totals

    @property
    def total(self) -> int:
        return self.real + self.synthetic

    @property
    def is_empty(self) -> bool:
        return self.total == 0

    @property
    def skin_key(self) -> str:
        return skin_key(self.skin_type)

    @property
    def skin_label(self) -> str:
        return roman(self.skin_type)


@dataclass(frozen=True)
class CoverageRow:
    condition: Condition
    cells: list[CoverageCell]
    real: int
    synthetic: int

    @property
    def total(self) -> int:
        return self.real + self.synthetic

    @property
    def pending(self) -> int:
        return sum(cell.pending for cell in self.cells)


@dataclass
class CoverageMatrix:
    """Real and synthetic image counts per (condition, skin type); skin type None = unknown."""

    conditions: list[Condition]
    skin_types: tuple[int | None, ...] = SKIN_COLUMNS
    # (condition slug, skin type) -> (real, synthetic); cells without images are absent
    counts: dict[tuple[str, int | None], tuple[int, int]] = field(default_factory=dict)
    # (condition slug, skin type) -> synthetic images pending review (not in `counts`)
    pending_counts: dict[tuple[str, int | None], int] = field(default_factory=dict)

    def real(self, condition: Condition | str, skin_type: int | None) -> int:
        return self.counts.get((_slug(condition), skin_type), (0, 0))[0]

    def synthetic(self, condition: Condition | str, skin_type: int | None) -> int:
        return self.counts.get((_slug(condition), skin_type), (0, 0))[1]

    def pending(self, condition: Condition | str, skin_type: int | None) -> int:
        return self.pending_counts.get((_slug(condition), skin_type), 0)

    def total(self, condition: Condition | str, skin_type: int | None) -> int:
        return self.real(condition, skin_type) + self.synthetic(condition, skin_type)

    @property
    def pending_total(self) -> int:
        return sum(self.pending_counts.values())

    def row_total(self, condition: Condition | str) -> tuple[int, int]:
        slug = _slug(condition)
        return _sum(value for (row, _), value in self.counts.items() if row == slug)

    def column_total(self, skin_type: int | None) -> tuple[int, int]:
        return _sum(value for (_, column), value in self.counts.items() if column == skin_type)

    @property
    def column_totals(self) -> list[CoverageCell]:
        """One pseudo-cell per column (condition None) so templates can loop over totals."""
        return [CoverageCell(None, s, *self.column_total(s)) for s in self.skin_types]

    @property
    def grand_total(self) -> tuple[int, int]:
        return _sum(self.counts.values())

    @property
    def max_cell(self) -> int:
        return max((real + synthetic for real, synthetic in self.counts.values()), default=0)

    def cell(self, condition: Condition, skin_type: int | None) -> CoverageCell:
        real, synthetic = self.counts.get((condition.slug, skin_type), (0, 0))
        return CoverageCell(condition, skin_type, real, synthetic, level=heat_level(real + synthetic, self.max_cell),
                            pending=self.pending(condition, skin_type))

    @property
    def rows(self) -> list[CoverageRow]:
        return [
            CoverageRow(c, [self.cell(c, s) for s in self.skin_types], *self.row_total(c)) for c in self.conditions
        ]

    def empty_cells(self, *, origin: str | None = None, include_unknown: bool = False) -> list[CoverageCell]:
        """Cells with no images (of `origin` if given: "real" or "synthetic"), row by row.

        The unknown-skin-type column is left out by default: it is not a cell anyone can fill.
        """
        columns = [s for s in self.skin_types if include_unknown or s is not None]
        cells = [self.cell(c, s) for c in self.conditions for s in columns]
        if origin == Image.Origin.REAL:
            return [cell for cell in cells if cell.real == 0]
        if origin == Image.Origin.SYNTHETIC:
            return [cell for cell in cells if cell.synthetic == 0]
        return [cell for cell in cells if cell.is_empty]

    def as_dict(self) -> dict:
        return {
            "skin_types": [skin_key(s) for s in self.skin_types],
            "conditions": [
                {
                    "slug": row.condition.slug,
                    "name": row.condition.name,
                    "cells": {
                        cell.skin_key: {"real": cell.real, "synthetic": cell.synthetic} for cell in row.cells
                    },
                    "total": {"real": row.real, "synthetic": row.synthetic},
                    # Synthetic images waiting for review, per skin type with any (not in the counts).
                    "pending": {cell.skin_key: cell.pending for cell in row.cells if cell.pending},
                }
                for row in self.rows
            ],
            "column_totals": {
                skin_key(s): dict(zip(("real", "synthetic"), self.column_total(s), strict=True))
                for s in self.skin_types
            },
            "total": dict(zip(("real", "synthetic"), self.grand_total, strict=True)),
            "pending": self.pending_total,
        }


def coverage_matrix(
    *, public_only: bool = True, conditions: Iterable[Condition | str] | None = None
) -> CoverageMatrix:
    """Count images per (condition, Fitzpatrick type, origin) in one aggregate query.

    Public images (approved synthetic ones included) are the counts; synthetic images pending
    review are counted apart (`pending`). With public_only=False every image counts.
    `conditions` picks and orders the rows (Condition objects or slugs); by default every
    condition, in the taxonomy's order.
    """
    rows = _conditions(conditions, public_only=public_only)
    images = Image.objects.public_or_pending() if public_only else Image.objects.all()
    counted = public_q() if public_only else Q()
    if conditions is not None:
        images = images.filter(condition__in=rows)
    grouped = (
        images.order_by()  # the model's default ordering would otherwise join the GROUP BY
        .values("condition__slug", "fitzpatrick_type")
        .annotate(
            real=Count("id", filter=counted & Q(origin=Image.Origin.REAL)),
            synthetic=Count("id", filter=counted & Q(origin=Image.Origin.SYNTHETIC)),
            pending=Count("id", filter=pending_review_q()),
        )
    )
    counts, pending = {}, {}
    for g in grouped:
        key = (g["condition__slug"], g["fitzpatrick_type"])
        if g["real"] or g["synthetic"]:
            counts[key] = (g["real"], g["synthetic"])
        if g["pending"]:
            pending[key] = g["pending"]
    return CoverageMatrix(conditions=rows, counts=counts, pending_counts=pending)


def heat_level(count: int, maximum: int) -> int:
    """0 for an empty cell; otherwise 1..HEAT_LEVELS on a log scale relative to `maximum`."""
    if count <= 0 or maximum <= 0:
        return 0
    if maximum == 1:
        return HEAT_LEVELS
    share = math.log1p(count) / math.log1p(maximum)
    return max(1, min(HEAT_LEVELS, math.ceil(share * HEAT_LEVELS)))


# --- small reads for the pages ---------------------------------------------------------------


def images_for_listing(
    *,
    condition: Condition | None = None,
    conditions: Iterable[Condition | str] = (),
    skin_types: Iterable[int | None] = (),
    origin: str | None = None,
    viewer=None,
) -> QuerySet[Image]:
    """Images `viewer` may see (public ones; staff also pending ones), filtered as the browse
    pages ask (atlas/filters.py); skin type None selects "unknown".

    `conditions` (objects or slugs) selects any of several; `condition` one.
    """
    slugs = [_slug(c) for c in conditions] or ([condition.slug] if condition is not None else [])
    filters = ImageFilters(conditions=tuple(slugs), skin_types=tuple(skin_types), origin=origin or "")
    return images_filtered(filters, Image.objects.visible_to(viewer)).select_related("condition", "source")


# What a row of the API's images list carries: the image's fields, its condition's and source's.
IMAGE_VALUES = (
    "id", "public_id", "file", "thumbnail", "is_public", "fitzpatrick_type", "fitzpatrick_label_source", "monk_tone",
    "body_site", "origin", "review_state", "licence", "attribution", "width", "height", "provenance", "created_at",
    "condition__slug", "condition__name", "source__slug", "source__name", "source__url",
)  # fmt: skip


def images_matching(filters: ImageFilters, *, viewer=None) -> QuerySet[Image]:
    """Images `viewer` may see (public ones; staff also those pending review) passing the
    filters, with what the API shows of them. Exports pass no viewer: public images only."""
    images = images_filtered(filters, Image.objects.visible_to(viewer))
    return images.select_related("condition", "source").prefetch_related("regions")


class RegionBoxes(Expression):
    """An image's lesion boxes, by id, as one JSON text: [[x, y, width, height, label], ...].

    A correlated subquery, so a page of images and its boxes come back in one query instead of
    two (the second query was a seventh of the images list's CPU)."""

    output_field = TextField()

    def _outer(self, compiler) -> tuple[str, str]:
        outer = compiler.quote_name_unless_alias(compiler.query.get_initial_alias())
        return compiler.quote_name_unless_alias(Region._meta.db_table), f"{outer}.{compiler.quote_name_unless_alias('id')}"

    def as_postgresql(self, compiler, connection):
        table, image_id = self._outer(compiler)
        return (
            "(SELECT COALESCE(json_agg(json_build_array(r.x, r.y, r.width, r.height, r.label) ORDER BY r.id), "
            f"'[]'::json)::text FROM {table} r WHERE r.image_id = {image_id})",
            [],
        )

    def as_sqlite(self, compiler, connection):
        # SQLite 3.40 has no ORDER BY inside an aggregate: the rows come ordered from a subquery.
        table, image_id = self._outer(compiler)
        return (
            "(SELECT json_group_array(json_array(r.x, r.y, r.width, r.height, r.label)) FROM "
            f"(SELECT x, y, width, height, label FROM {table} WHERE image_id = {image_id} ORDER BY id) r)",
            [],
        )

    def as_sql(self, compiler, connection):
        raise NotImplementedError(f"RegionBoxes has no SQL for {connection.vendor}")


def image_rows_matching(filters: ImageFilters, *, viewer=None) -> QuerySet:
    """images_matching as `.values()` rows of what the API's list shows (atlas/api/payloads.py):
    the same images, no model instances, each with its boxes (`region_boxes`, RegionBoxes)."""
    return images_filtered(filters, Image.objects.visible_to(viewer)).values(*IMAGE_VALUES, region_boxes=RegionBoxes())


def image_visible_to(user, image: Image) -> bool:
    """Whether this user may see this image at all: public images (public_q) everyone, others staff only.

    The one rule for the API (uploads' duplicate answers) and the authenticated file view."""
    if bool(user is not None and user.is_authenticated and user.is_staff):
        return True
    return Image.objects.filter(public_q(), pk=image.pk).exists()  # the one rule, not a copy of it


def image_for_detail(public_id, *, viewer=None) -> Image | None:
    """An image `viewer` may see (Image.objects.visible_to) with what its page shows, or None."""
    return (
        Image.objects.visible_to(viewer)
        .select_related("condition", "source")
        .prefetch_related("regions")
        .filter(public_id=public_id)
        .first()
    )


def examples_on_other_skin_types(image: Image) -> list[Image]:
    """One public image of the same condition per other known skin type, real ones first."""
    examples = []
    for skin_type in FITZPATRICK_TYPES:
        if skin_type == image.fitzpatrick_type:
            continue
        example = (
            Image.objects.public()
            .filter(condition_id=image.condition_id, fitzpatrick_type=skin_type)
            .select_related("condition")
            .order_by("origin", "-created_at")  # "real" sorts before "synthetic"
            .first()
        )
        if example is not None:
            examples.append(example)
    return examples


@dataclass(frozen=True)
class StripCell:
    """One Fitzpatrick type of a condition's strip: an example image, or None for a gap."""

    skin_type: int
    image: Image | None

    @property
    def skin_label(self) -> str:
        return roman(self.skin_type)


def condition_strip(condition: Condition) -> list[StripCell]:
    """One public image of `condition` per Fitzpatrick type I-VI (real first, then the newest);
    None where the type has none. Public means public_q: approved synthetic images only."""
    cells = []
    for skin_type in FITZPATRICK_TYPES:
        example = (
            Image.objects.public()
            .filter(condition=condition, fitzpatrick_type=skin_type)
            .select_related("condition")
            .order_by("origin", "-created_at", "-id")  # "real" sorts before "synthetic"
            .first()
        )
        cells.append(StripCell(skin_type, example))
    return cells


def condition_names() -> list[dict]:
    """Every condition with the names people use for it: the search page's typeahead data."""
    return [
        {"slug": c.slug, "name": c.name, "synonyms": [s for s in c.synonyms if s.strip()]}
        for c in Condition.objects.public().order_by("name")
    ]


def condition_by_name(term: str) -> Condition | None:
    """The condition a person means by `term`: its slug, its name or a synonym, any case.

    "ringworm" -> Tinea. Synonyms live in a JSON list, so the match is done here rather than in
    SQL; there are a few dozen conditions.
    """
    wanted = " ".join(term.split()).casefold()
    if not wanted:
        return None
    conditions = list(Condition.objects.public())
    for condition in conditions:
        if wanted in (condition.slug, condition.name.casefold()):
            return condition
    for condition in conditions:
        if wanted in (s.strip().casefold() for s in condition.synonyms):
            return condition
    return None


def catalogue_has_procedural_images() -> bool:
    """True when public images come from procedural demo data (pages must say so)."""
    return Source.objects.filter(public_q("images__"), is_procedural=True).exists()


def _conditions(conditions: Iterable[Condition | str] | None, *, public_only: bool) -> list[Condition]:
    # Conditions an import created await a curator: staff counts show them, public ones do not.
    known = Condition.objects.public() if public_only else Condition.objects.all()
    if conditions is None:
        return list(known)
    wanted = [_slug(c) for c in conditions]
    by_slug = {c.slug: c for c in known.filter(slug__in=wanted)}
    return [by_slug[slug] for slug in wanted if slug in by_slug]


def _slug(condition: Condition | str) -> str:
    return condition.slug if isinstance(condition, Condition) else condition


def _sum(values: Iterable[tuple[int, int]]) -> tuple[int, int]:
    real = synthetic = 0
    for r, s in values:
        real += r
        synthetic += s
    return real, synthetic
