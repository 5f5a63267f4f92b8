"""What the search page shows for a query: ranked search hits, or the catalogue filtered.

Text, "more like this" and photo queries go to the search engine (search.query). Plain
filtering (condition, skin type, real/synthetic) needs no model and reads the catalogue, which
is also what the page falls back to, with a clear note, while search is unavailable (no model
or index yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Case, IntegerField, Value, When

from atlas.models import Condition, Image
from atlas.filters import ImageFilters, images_filtered
from atlas.web.forms import SearchQuery
from search.errors import SearchUnavailable
from search.query import (
    SearchResult,
    query_interpret,
    search_image,
    search_similar,
    search_text,
)


@dataclass
class Results:
    page: Page
    mode: str  # "browse", "text", "similar" or "photo"
    unavailable: str = ""  # why the search engine could not answer; the page then browses the catalogue
    conditions: list[Condition] = field(default_factory=list)  # conditions chosen, or named in the text (ranked first)
    boosted_types: tuple[int, ...] = ()  # skin types named in the text, ranked first
    terms: tuple[str, ...] = ()  # the words of the text that were understood
    capped: bool = False  # more images match than a ranked search returns (SEARCH_MAX_K)
    confident: bool = True  # False: nothing matched above the relevance floor; `closest` holds the nearest images
    closest: list[Image] = field(default_factory=list)
    suggestion: str = ""  # "did you mean": the query with near-misses of condition names corrected
    only_skin_type: bool = False  # the words name a skin type and nothing else
    gap: dict | None = None  # {"conditions": [Condition], "requested": (6,), "nearest": (5,)} when a type has none


def results_for_query(query: SearchQuery, *, page: str | None, page_size: int) -> Results:
    """Results for a text, "more like this" or browse query (GET; the URL holds all of it)."""
    if not query.is_search:
        return _browse(query, page=page, page_size=page_size)
    k = min(settings.SEARCH_MAX_K, _page_number(page) * page_size)
    filters = _filters(query)
    try:
        if query.like is not None:
            result = search_similar(image=query.like, filters=filters, k=k)
            mode = "similar"
        else:
            result = search_text(query=query.text, filters=filters, k=k)
            mode = "text"
    except SearchUnavailable as exc:
        return _browse(query, page=page, page_size=page_size, unavailable=str(exc))
    return _ranked(result, mode, page=page, page_size=page_size)


def results_for_photo(query: SearchQuery, *, data: bytes, k: int) -> Results:
    """Images like an uploaded photo: one page of the best `k`. Raises SearchError on a bad photo."""
    try:
        result = search_image(data=data, filters=_filters(query), k=min(k, settings.SEARCH_MAX_K))
    except SearchUnavailable as exc:
        return _browse(query, page=None, page_size=k, unavailable=str(exc))
    images = [hit.image for hit in result.hits]
    return Results(
        page=Paginator(images, max(1, len(images))).page(1),
        mode="photo",
        confident=result.confident,
        closest=[hit.image for hit in result.closest],
        gap=_gap(result),
    )


def similar_to(image: Image, *, k: int) -> tuple[list[Image], str]:
    """(images most like `image`, "") or ([], why search cannot answer yet)."""
    try:
        return [hit.image for hit in search_similar(image=image, k=k).hits], ""
    except SearchUnavailable as exc:
        return [], str(exc)


# --- helpers -------------------------------------------------------------------------------


def _filters(query: SearchQuery) -> ImageFilters:
    return ImageFilters(
        conditions=(query.condition.slug,) if query.condition else (),
        skin_types=query.skin_types,
        origin=query.origin,
        source=query.source,
        licence=query.licence,
    )


def _ranked(result: SearchResult, mode: str, *, page: str | None, page_size: int) -> Results:
    images = [hit.image for hit in result.hits]
    # The total is what the ranking can page through (filtered and indexed), the same on every
    # page; each page asks for its own prefix of the ranking, up to SEARCH_MAX_K.
    available = result.total() if result.confident else 0
    total = min(max(available, len(images)), settings.SEARCH_MAX_K)
    boosted = tuple(sorted({hit.image.fitzpatrick_type for hit in result.hits if hit.boosted} - {None}))
    meaning = result.interpretation
    return Results(
        page=Paginator(_RankedImages(images, total), page_size).get_page(page),
        mode=mode,
        conditions=_conditions(result.filters.conditions or meaning.conditions),
        boosted_types=meaning.skin_types if boosted and not result.filters.skin_types else (),
        terms=meaning.terms,
        capped=available > settings.SEARCH_MAX_K,
        confident=result.confident,
        closest=[hit.image for hit in result.closest],
        suggestion=meaning.suggestion,
        only_skin_type=meaning.only_skin_type,
        gap=_gap(result),
    )


def _gap(result: SearchResult) -> dict | None:
    gap = result.skin_type_gap
    if gap is None:
        return None
    return {"conditions": _conditions(gap.conditions), "requested": gap.requested, "nearest": gap.nearest}


def _browse(query: SearchQuery, *, page: str | None, page_size: int, unavailable: str = "") -> Results:
    """The catalogue filtered; with search words, the conditions and skin types they name come first."""
    meaning = query_interpret(query.text) if query.text else None
    named = list(meaning.conditions) if meaning and not query.condition else []
    slugs = [query.condition.slug] if query.condition else []
    if query.like is not None and not slugs:
        slugs = [query.like.condition.slug]  # "more like this" without the model: the same condition
    images = images_filtered(_filters(query).replace(conditions=tuple(slugs))).select_related("condition", "source")
    boosted = meaning.skin_types if meaning and not query.skin_types else ()
    order = []
    if named:
        order.append(Case(When(condition__slug__in=named, then=Value(0)), default=Value(1), output_field=IntegerField()))
    if boosted:
        order.append(Case(When(fitzpatrick_type__in=boosted, then=Value(0)), default=Value(1), output_field=IntegerField()))
    if order:
        images = images.order_by(*order, "-created_at", "-id")
    if query.like is not None:
        images = images.exclude(pk=query.like.pk)
    return Results(
        page=Paginator(images, page_size).get_page(page),
        mode="browse",
        unavailable=unavailable,
        conditions=_conditions(slugs or named),
        boosted_types=boosted,
        terms=meaning.terms if meaning else (),
        suggestion=meaning.suggestion if meaning else "",
    )


class _RankedImages(Sequence):
    """The first hits of a ranking, paged as if the ranking had `total` items (Paginator's protocol)."""

    def __init__(self, images: list[Image], total: int) -> None:
        self.images = images
        self.total = total

    def count(self) -> int:
        return self.total

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index):
        return self.images[index]


def _page_number(raw: str | None) -> int:
    try:
        return max(1, int(raw or 1))
    except ValueError:
        return 1


def _conditions(slugs) -> list[Condition]:
    by_slug = {c.slug: c for c in Condition.objects.public().filter(slug__in=list(slugs))}
    return [by_slug[s] for s in slugs if s in by_slug]
