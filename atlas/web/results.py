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
from atlas.selectors import images_for_listing
from atlas.web.forms import SearchQuery
from search.errors import SearchUnavailable
from search.query import (
    SearchFilters,
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
    conditions: list[Condition] = field(default_factory=list)  # conditions applied (picked or named in the text)
    boosted_types: tuple[int, ...] = ()  # skin types named in the text, ranked first
    terms: tuple[str, ...] = ()  # the words of the text that became filters or boosts
    capped: bool = False  # more images match than a ranked search returns (SEARCH_MAX_K)


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
    return _ranked(result, mode, page=page, page_size=page_size, k=k, exclude=query.like)


def results_for_photo(query: SearchQuery, *, data: bytes, k: int) -> Results:
    """Images like an uploaded photo: one page of the best `k`. Raises SearchError on a bad photo."""
    try:
        result = search_image(data=data, filters=_filters(query), k=min(k, settings.SEARCH_MAX_K))
    except SearchUnavailable as exc:
        return _browse(query, page=None, page_size=k, unavailable=str(exc))
    images = [hit.image for hit in result.hits]
    return Results(page=Paginator(images, max(1, len(images))).page(1), mode="photo")


def similar_to(image: Image, *, k: int) -> tuple[list[Image], str]:
    """(images most like `image`, "") or ([], why search cannot answer yet)."""
    try:
        return [hit.image for hit in search_similar(image=image, k=k).hits], ""
    except SearchUnavailable as exc:
        return [], str(exc)


# --- helpers -------------------------------------------------------------------------------


def _filters(query: SearchQuery) -> SearchFilters:
    return SearchFilters(
        conditions=(query.condition.slug,) if query.condition else (),
        skin_types=tuple(t for t in query.skin_types if t is not None),
        origin=query.origin,
    )


def _ranked(result: SearchResult, mode: str, *, page: str | None, page_size: int, k: int, exclude: Image | None) -> Results:
    images = [hit.image for hit in result.hits]
    matching = Image.objects.public().filter(result.filters.q())
    if exclude is not None:
        matching = matching.exclude(pk=exclude.pk)
    # Fewer hits than asked: the filtered catalogue is exhausted. Otherwise page on through the
    # ranking up to SEARCH_MAX_K (each page asks for its own prefix of the ranking).
    available = len(images) if len(images) < k else matching.count()
    total = min(available, settings.SEARCH_MAX_K)
    boosted = tuple(sorted({hit.image.fitzpatrick_type for hit in result.hits if hit.boosted} - {None}))
    return Results(
        page=Paginator(_RankedImages(images, total), page_size).get_page(page),
        mode=mode,
        conditions=_conditions(result.filters.conditions),
        boosted_types=result.interpretation.skin_types if boosted else (),
        terms=result.interpretation.terms,
        capped=available > settings.SEARCH_MAX_K,
    )


def _browse(query: SearchQuery, *, page: str | None, page_size: int, unavailable: str = "") -> Results:
    """The catalogue filtered; with search words, their condition names and skin-tone words still apply."""
    interpretation = query_interpret(query.text) if query.text else None
    slugs = [query.condition.slug] if query.condition else list(interpretation.conditions if interpretation else ())
    if query.like is not None and not slugs:
        slugs = [query.like.condition.slug]  # "more like this" without the model: the same condition
    images = images_for_listing(conditions=slugs, skin_types=query.skin_types, origin=query.origin or None)
    boosted = interpretation.skin_types if interpretation and not query.skin_types else ()
    if boosted:
        first = Case(When(fitzpatrick_type__in=boosted, then=Value(0)), default=Value(1), output_field=IntegerField())
        images = images.order_by(first, "-created_at", "-id")
    if query.like is not None:
        images = images.exclude(pk=query.like.pk)
    return Results(
        page=Paginator(images, page_size).get_page(page),
        mode="browse",
        unavailable=unavailable,
        conditions=_conditions(slugs),
        boosted_types=boosted,
        terms=interpretation.terms if interpretation else (),
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
