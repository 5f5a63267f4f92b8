"""The image filters shared by the images list, search and exports (parsed and checked once)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.db.models import Q, QuerySet

from atlas.models import Condition, Image, Source
from atlas.selectors import images_for_listing
from search.query import SearchFilters


@dataclass(frozen=True)
class ImageFilters:
    conditions: tuple[str, ...] = ()  # slugs, any of
    skin_types: tuple[int, ...] = ()  # Fitzpatrick types 1-6, any of
    origin: str = ""  # real | synthetic | "" (both)
    source: str = ""  # source slug
    licence: str = ""  # licence identifier, exact (case-insensitive)

    def as_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    def as_search_filters(self) -> SearchFilters:
        return SearchFilters(
            conditions=self.conditions, skin_types=self.skin_types, origin=self.origin, source=self.source, licence=self.licence
        )


def unknown_conditions(slugs: tuple[str, ...]) -> list[str]:
    known = set(Condition.objects.public().filter(slug__in=slugs).values_list("slug", flat=True))
    return sorted(set(slugs) - known)


def unknown_source(slug: str) -> bool:
    return bool(slug) and not Source.objects.filter(slug=slug).exists()


def images_matching(filters: ImageFilters, *, viewer=None) -> QuerySet[Image]:
    """Images `viewer` may see (public ones; staff also those pending review) passing the
    filters, with what the API shows of them. Exports pass no viewer: public images only."""
    images = images_for_listing(skin_types=filters.skin_types, origin=filters.origin or None, viewer=viewer)
    query = Q()
    if filters.conditions:
        query &= Q(condition__slug__in=filters.conditions)
    if filters.source:
        query &= Q(source__slug=filters.source)
    if filters.licence:
        query &= Q(licence__iexact=filters.licence)
    return images.filter(query).prefetch_related("regions")
