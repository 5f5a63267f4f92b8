"""One definition of the image filters: the catalogue API, the search pages and the search service.

`ImageFilterSet` (django-filter) says what each filter accepts and what it selects; every
surface goes through it, so `licence=cc-by-4.0` means the same everywhere:

| parameter     | accepts                                       | selects                             |
| ------------- | --------------------------------------------- | ----------------------------------- |
| `condition`   | condition slugs, repeated or comma-separated  | images of any of them               |
| `fitzpatrick` | 1-6 or `unknown`, repeated or comma-separated | images of any of those skin types   |
| `origin`      | `real` or `synthetic`                         | images of that origin               |
| `source`      | a source slug                                 | images from that source             |
| `licence`     | a licence identifier, any case                | images under that licence           |

`ImageFilters` is the checked value the services take (`filters_parse` makes one from a query
string, `images_filtered` applies one); an unknown slug or a bad value is a `FilterError`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from atlas.models import Condition, Image, Source
from atlas.skin import FITZPATRICK_TYPES, roman

UNKNOWN = "unknown"  # the skin type nobody labelled (browsing only: search cannot rank it)


class FilterError(ValueError):
    """A filter value that selects nothing meaningful (unknown slug, skin type 7, ...)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        self.field = next(iter(errors))
        self.message = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())
        super().__init__(self.message)

    @property
    def code(self) -> str:
        return _CODES.get(self.field, "bad_filter")


_CODES = {"condition": "unknown_condition", "fitzpatrick": "bad_skin_type", "origin": "bad_origin", "source": "unknown_source", "licence": "bad_licence"}


@dataclass(frozen=True)
class ImageFilters:
    conditions: tuple[str, ...] = ()  # condition slugs, any of
    skin_types: tuple[int | None, ...] = ()  # Fitzpatrick types, any of; None = unknown
    origin: str = ""  # "real" | "synthetic" | "" (both)
    source: str = ""  # source slug
    licence: str = ""  # licence identifier, matched in any case
    # What ImageFilterSet validated (`checked()`): applying these filters again skips the
    # validation and its queries (a search applies one request's filters once per ranking tier).
    _checked: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def is_checked(self) -> bool:
        return self._checked is not None

    def is_empty(self) -> bool:
        return not (self.conditions or self.skin_types or self.origin or self.source or self.licence)

    def replace(self, **changes) -> ImageFilters:
        """A copy with `changes`, unchecked: images_filtered validates it again."""
        return replace(self, **changes)

    def narrowed(self, *, conditions: tuple[str, ...] | None = None, skin_types: tuple[int | None, ...] | None = None) -> ImageFilters:
        """A copy with other conditions or skin types that stays checked, for values the caller
        took from the checked vocabulary (slugs of public conditions, types 1-6): a ranking
        tier of the same request. From unchecked filters, an unchecked copy."""
        changes = {key: value for key, value in (("conditions", conditions), ("skin_types", skin_types)) if value is not None}
        narrowed = replace(self, **changes)
        if self._checked is not None:
            cleaned = dict(self._checked)
            if conditions is not None:
                cleaned["condition"] = list(conditions)  # the filter selects by slug
            if skin_types is not None:
                cleaned["fitzpatrick"] = [UNKNOWN if t is None else str(t) for t in skin_types]
            object.__setattr__(narrowed, "_checked", cleaned)
        return narrowed

    def as_dict(self) -> dict:
        values = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}

    def as_query(self) -> dict[str, list[str]]:
        """The query-string form the FilterSet reads (what a URL would carry)."""
        query = {
            "condition": list(self.conditions),
            "fitzpatrick": [UNKNOWN if t is None else str(t) for t in self.skin_types],
            "origin": [self.origin] if self.origin else [],
            "source": [self.source] if self.source else [],
            "licence": [self.licence] if self.licence else [],
        }
        return {key: value for key, value in query.items() if value}


class _Many(forms.SelectMultiple):
    """A repeatable parameter: ?fitzpatrick=5&fitzpatrick=6, or ?fitzpatrick=5,6, or a JSON list."""

    def value_from_datadict(self, data, files, name):
        raw = data.getlist(name) if hasattr(data, "getlist") else data.get(name)
        if raw is None:
            return []
        values = raw if isinstance(raw, list | tuple) else [raw]
        return [part.strip() for value in values for part in str(value).split(",") if part.strip()]


class _One(forms.TextInput):
    """A single value from a query string or a JSON body (a one-item list is accepted too)."""

    def value_from_datadict(self, data, files, name):
        raw = data.getlist(name) if hasattr(data, "getlist") else data.get(name)
        if isinstance(raw, list | tuple):
            raw = raw[-1] if raw else None
        return None if raw is None else str(raw).strip()


SKIN_TYPE_VALUES = [(str(n), f"Type {roman(n)}") for n in FITZPATRICK_TYPES] + [(UNKNOWN, "Unknown")]


class ImageFilterSet(django_filters.FilterSet):
    condition = django_filters.ModelMultipleChoiceFilter(
        field_name="condition__slug",  # the predicate takes the slug of each chosen condition
        to_field_name="slug",
        queryset=Condition.objects.public(),  # conditions awaiting curation are not choices
        distinct=False,  # a foreign key: no row is repeated
        widget=_Many,
        help_text="Condition slug; repeat (or separate with commas) for any of several.",
        error_messages={"invalid_choice": "unknown condition %(value)s (see /api/v1/conditions/)"},
    )
    fitzpatrick = django_filters.MultipleChoiceFilter(
        choices=SKIN_TYPE_VALUES,
        method="filter_skin_types",
        widget=_Many,
        help_text="Fitzpatrick skin type 1-6 (or unknown); repeat for any of several (fitzpatrick=5&fitzpatrick=6).",
        error_messages={"invalid_choice": "Fitzpatrick types are 1-6 or unknown, not %(value)s"},
    )
    origin = django_filters.ChoiceFilter(
        choices=Image.Origin.choices, widget=_One, help_text="real or synthetic.", empty_label=None
    )
    source = django_filters.ModelChoiceFilter(
        field_name="source",
        to_field_name="slug",
        queryset=Source.objects.all(),
        widget=_One,
        help_text="Source slug.",
        error_messages={"invalid_choice": "unknown source"},
    )
    licence = django_filters.CharFilter(
        field_name="licence", lookup_expr="iexact", max_length=64, widget=_One, help_text="Licence identifier, e.g. CC-BY-4.0 (any case)."
    )

    class Meta:
        model = Image
        fields: list[str] = []

    def filter_skin_types(self, queryset: QuerySet, name: str, values: list[str]) -> QuerySet:
        match = Q(fitzpatrick_type__in=[int(v) for v in values if v != UNKNOWN])
        if UNKNOWN in values:
            match |= Q(fitzpatrick_type__isnull=True)
        return queryset.filter(match)

    def get_form_class(self):
        return _form_class()

    def checked(self) -> ImageFilters:
        """The filters as a checked value; FilterError when any is invalid."""
        return _checked(self.form)

    def apply(self, cleaned: dict, queryset: QuerySet[Image]) -> QuerySet[Image]:
        """`queryset` filtered by values a FilterSet already validated (django-filter's
        filter_queryset without the form)."""
        queryset = queryset.all()
        for name, value in cleaned.items():
            queryset = self.filters[name].filter(queryset, value)
        return queryset


def _checked(form: forms.Form) -> ImageFilters:
    """The bound filter form's values as checked ImageFilters; FilterError naming every bad field."""
    if not form.is_valid():
        raise FilterError({field: [str(m) for m in messages] for field, messages in form.errors.items()})
    data = form.cleaned_data
    filters = ImageFilters(
        conditions=tuple(c.slug for c in data.get("condition") or ()),
        skin_types=tuple(sorted({None if v == UNKNOWN else int(v) for v in data.get("fitzpatrick") or ()}, key=lambda t: t or 0)),
        origin=data.get("origin") or "",
        source=data["source"].slug if data.get("source") else "",
        licence=data.get("licence") or "",
    )
    object.__setattr__(filters, "_checked", dict(data))
    return filters


def filters_parse(data: Mapping) -> ImageFilters:
    """Filters from a query string (QueryDict) or a JSON body (dict); FilterError when invalid."""
    return _checked(_form_class()(data))


def images_filtered(filters: ImageFilters, queryset: QuerySet[Image] | None = None) -> QuerySet[Image]:
    """Public images (or `queryset`) passing `filters`; FilterError when a filter is invalid."""
    queryset = Image.objects.public() if queryset is None else queryset
    if filters.is_checked:
        return _applier().apply(filters._checked, queryset)
    filterset = ImageFilterSet(filters.as_query(), queryset=queryset)
    filterset.checked()  # an invalid field would otherwise be skipped silently by django-filter
    return filterset.qs


# A FilterSet deep-copies its filters (and their querysets) when made and builds a new form
# class from them: together a quarter of a filtered list's CPU. Both are the same for every
# request, so each process makes them once: parsing binds the form class to the data (a Django
# form copies its fields per instance), applying reads the filters (the queryset comes in).
@functools.cache
def _form_class() -> type[forms.Form]:
    return django_filters.FilterSet.get_form_class(_applier())


@functools.cache
def _applier() -> ImageFilterSet:
    return ImageFilterSet(queryset=Image.objects.none())
