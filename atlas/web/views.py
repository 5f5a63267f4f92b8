"""Server-rendered atlas pages. Thin: read through atlas.selectors, render a template."""

from __future__ import annotations

import json
from uuid import UUID

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from atlas.forms import ImageFilterForm
from atlas.models import Condition, Image
from atlas.selectors import (
    coverage_matrix,
    examples_on_other_skin_types,
    image_for_detail,
    images_for_listing,
)
from atlas.skin import FITZPATRICK_TONE_WORDS, FITZPATRICK_TYPES, roman

PAGE_SIZE = 24


def home(request: HttpRequest) -> HttpResponse:
    matrix = coverage_matrix()
    real, synthetic = matrix.grand_total
    context = {
        "real": real,
        "synthetic": synthetic,
        "conditions_with_images": sum(1 for row in matrix.rows if row.total),
        "condition_count": len(matrix.conditions),
        "gaps": len(matrix.empty_cells()),
        "cells": len(matrix.conditions) * len(FITZPATRICK_TYPES),
        "skin_types": _skin_type_links(matrix),
    }
    return render(request, "atlas/home.html", context)


def coverage(request: HttpRequest) -> HttpResponse:
    matrix = coverage_matrix()
    return render(request, "atlas/coverage.html", {"matrix": matrix, "gaps": len(matrix.empty_cells())})


def condition_list(request: HttpRequest) -> HttpResponse:
    matrix = coverage_matrix()
    return render(request, "atlas/condition_list.html", {"rows": matrix.rows})


def condition_detail(request: HttpRequest, slug: str) -> HttpResponse:
    condition = get_object_or_404(Condition, slug=slug)
    row = coverage_matrix(conditions=[condition]).rows[0]
    context = {"condition": condition, "row": row, "page": _page(request, images_for_listing(condition=condition))}
    return render(request, "atlas/condition_detail.html", context)


def skin_type_detail(request: HttpRequest, skin_type: int) -> HttpResponse:
    if skin_type not in FITZPATRICK_TYPES:
        raise Http404("Fitzpatrick types are I to VI")
    matrix = coverage_matrix()
    context = {
        "skin_type": skin_type,
        "tone_words": FITZPATRICK_TONE_WORDS[skin_type],
        "cells": [matrix.cell(c, skin_type) for c in matrix.conditions],
        "skin_types": _skin_type_links(matrix),
        "page": _page(request, images_for_listing(skin_types=[skin_type])),
    }
    return render(request, "atlas/skin_type_detail.html", context)


def image_list(request: HttpRequest) -> HttpResponse:
    form = ImageFilterForm(request.GET, conditions=list(Condition.objects.all()))
    if not form.is_valid():
        context = {"form": form, "page": None, "summary": ""}
        return render(request, "atlas/image_list.html", context, status=400)
    query = form.cleaned_data
    images = images_for_listing(condition=query["condition"], skin_types=query["fitzpatrick"], origin=query["origin"])
    context = {"form": form, "page": _page(request, images), "summary": _summary(query)}
    return render(request, "atlas/image_list.html", context)


def image_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    image = image_for_detail(public_id)
    if image is None:
        raise Http404("No public image with this id")
    context = {
        "image": image,
        "regions": [_percent_box(image, region) for region in image.regions.all()],
        "others": examples_on_other_skin_types(image),
        "other_skin_types": _other_skin_types(image),
        "provenance": _provenance_items(image.provenance),
    }
    return render(request, "atlas/image_detail.html", context)


# --- helpers -------------------------------------------------------------------------------


def _page(request: HttpRequest, images: QuerySet[Image]) -> Page:
    return Paginator(images, PAGE_SIZE).get_page(request.GET.get("page"))


def _skin_type_links(matrix) -> list[dict]:
    return [{"number": s, "label": roman(s), "count": sum(matrix.column_total(s))} for s in FITZPATRICK_TYPES]


def _other_skin_types(image: Image) -> list[dict]:
    matrix = coverage_matrix(conditions=[image.condition])
    return [
        {"number": s, "label": roman(s), "real": matrix.real(image.condition, s), "synthetic": matrix.synthetic(image.condition, s)}
        for s in FITZPATRICK_TYPES
        if s != image.fitzpatrick_type
    ]


def _percent_box(image: Image, region) -> dict[str, str]:
    # Percentages of the stored image, so the overlay follows the image at any display size.
    def pct(value: int, whole: int) -> str:
        return f"{100 * value / whole:.3f}%"

    return {
        "left": pct(region.x, image.width),
        "top": pct(region.y, image.height),
        "width": pct(region.width, image.width),
        "height": pct(region.height, image.height),
        "label": region.label,
    }


def _provenance_items(provenance: dict) -> list[tuple[str, dict]]:
    items = []
    for key in sorted(provenance):
        value = provenance[key]
        text = value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True)
        items.append((key.replace("_", " "), {"text": text, "multiline": "\n" in text}))
    return items


def _summary(query: dict) -> str:
    parts = [query["condition"].name if query["condition"] else "All conditions"]
    if query["fitzpatrick"]:
        parts.append("skin type " + ", ".join(roman(s) for s in query["fitzpatrick"]))
    if query["origin"]:
        parts.append(f"{query['origin']} only")
    return " · ".join(parts)


__all__ = ["condition_detail", "condition_list", "coverage", "home", "image_detail", "image_list", "skin_type_detail"]
