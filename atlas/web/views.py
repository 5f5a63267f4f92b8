"""Server-rendered atlas pages. Thin: read through atlas.selectors, render a template."""

from __future__ import annotations

import base64
import io
import json
from urllib.parse import urlencode
from uuid import UUID

from django.core.files.storage import default_storage
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from atlas.api.throttling import photo_search_wait
from atlas.condition_content import EDUCATIONAL_NOTE
from atlas.models import Condition, Image
from atlas.ops.private_files import private_file_response
from atlas.provenance import public_provenance
from atlas.selectors import (
    condition_names,
    condition_strip,
    coverage_matrix,
    examples_on_other_skin_types,
    image_for_detail,
    image_visible_to,
    images_for_listing,
)
from atlas.services.ingestion import IngestionError, decode_upload
from atlas.uploads import too_large_page, upload_limit, upload_was_too_large
from atlas.skin import FITZPATRICK_TONE_WORDS, FITZPATRICK_TYPES, roman
from atlas.web.forms import PhotoSearchForm, SearchForm, SearchQuery
from atlas.web.results import Results, results_for_photo, results_for_query, similar_to
from search.errors import SearchError
from search.lookalikes import listed_lookalikes, lookalikes_for_image

PAGE_SIZE = 24
PHOTO_RESULTS = 24  # a photo search shows one page: the photo is not kept, so there is no page 2
SIMILAR_ON_DETAIL = 8
LOOKALIKES_ON_DETAIL = 6


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
    condition = get_object_or_404(Condition.objects.public(), slug=slug)
    row = coverage_matrix(conditions=[condition]).rows[0]
    context = {
        "condition": condition,
        "row": row,
        "page": _page(request, images_for_listing(condition=condition)),
        "strip": condition_strip(condition),
        "lookalikes": listed_lookalikes(condition),
        "educational_note": EDUCATIONAL_NOTE,
    }
    if request.user.is_staff:
        context["fill_gaps_url"] = _fill_gaps_url(row)
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


def search(request: HttpRequest) -> HttpResponse:
    """Text search, "more like this" and plain filtering; the URL holds the whole query."""
    form = SearchForm(request.GET)
    if not form.is_valid():
        return _search_page(request, form, None, status=400)
    query = form.query()
    try:
        results = results_for_query(query, page=request.GET.get("page"), page_size=PAGE_SIZE)
    except SearchError as exc:
        form.add_error("q", exc.message)
        return _search_page(request, form, None, status=400)
    return _search_page(request, form, results, query=query, status=503 if results.unavailable else 200)


def _photo_too_large(request: HttpRequest, form: SearchForm | None = None) -> HttpResponse:
    limit = upload_limit() // (1024 * 1024)
    error = f"The photo is larger than {limit} MB; nothing was kept. Try a smaller copy."
    return _search_page(request, form or PhotoSearchForm(), None, status=413, extra={"photo_error": error})


@never_cache
@too_large_page(_photo_too_large)  # a body declared too large: refused before it is read (atlas.uploads)
@require_http_methods(["GET", "POST"])
def search_photo(request: HttpRequest) -> HttpResponse:
    """Search by photo. The photo stays in memory for this request: never stored, never logged."""
    if request.method == "GET":
        return redirect(reverse("atlas:search") + "#photo")
    if (wait := photo_search_wait(request)) is not None:  # the API's photo-search count, before any decode
        return _photo_throttled(request, wait)
    form = PhotoSearchForm(request.POST, request.FILES)
    if upload_was_too_large(request):
        return _photo_too_large(request, form)
    if not form.is_valid():
        return _search_page(request, form, None, status=400)
    data = form.cleaned_data["photo"]
    query = form.query()
    try:
        results = results_for_photo(query, data=data, k=PHOTO_RESULTS)
    except SearchError as exc:
        form.add_error("photo", f"This file cannot be searched: {exc.message}.")
        return _search_page(request, form, None, status=400)
    context = {"preview": _preview(data)}
    return _search_page(request, form, results, query=query, status=503 if results.unavailable else 200, extra=context)


def image_list(request: HttpRequest) -> HttpResponseRedirect:
    """The old browse address: the search page does the same filtering (old links keep working)."""
    query = request.GET.urlencode()
    return redirect(reverse("atlas:search") + (f"?{query}" if query else ""), permanent=True)


def image_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    image = image_for_detail(public_id, viewer=request.user)
    if image is None:
        raise Http404("No public image with this id")
    context = {
        "image": image,
        "regions": [_percent_box(image, region) for region in image.regions.all()],
        "others": examples_on_other_skin_types(image),
        "other_skin_types": _other_skin_types(image),
        "provenance": _provenance_items(public_provenance(image.provenance), staff=request.user.is_staff),
    }
    context["similar"], context["similar_unavailable"] = similar_to(image, k=SIMILAR_ON_DETAIL)
    context["lookalikes"] = lookalikes_for_image(image=image, k=LOOKALIKES_ON_DETAIL)
    return render(request, "atlas/image_detail.html", context)


@require_http_methods(["GET", "HEAD"])
def image_file(request: HttpRequest, public_id: UUID, kind: str) -> HttpResponse:
    """An image's full file or thumbnail for whoever may see the image (hidden ones: staff only).

    Public images redirect to their public address; hidden ones are handed over by
    private_file_response. An image the caller may not see is a 404, like one that does not exist.
    """
    image = Image.objects.filter(public_id=public_id).first()
    if image is None or not image_visible_to(request.user, image):
        raise Http404("No image with this id")
    name = (image.file if kind == "file" else image.thumbnail).name
    if image.is_public:
        return redirect(default_storage.url(name))
    return private_file_response(name)


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


# Provenance keys of a synthetic image (written by generation.gaps), in reading order, with
# what a reader calls them; keys not listed follow in alphabetical order.
PROVENANCE_LABELS = {
    "model": "Model",
    "checkpoint": "Checkpoint",
    "checkpoint_step": "Checkpoint step",
    "training_data": "Trained on",
    "data_fingerprint": "Training data fingerprint",
    "code_version": "Code version",
    "map": "Semantic map parameters",
    "seed": "Seed",
    "batch": "Batch",
    "job": "Generation job",
    "cell": "Coverage cell filled",
    "sample_index": "Sample number",
    "gates": "Automatic gates",
    "review": "Review",
}


def _provenance_items(provenance: dict, *, staff: bool = False) -> list[dict]:
    """Provenance as label/text pairs: the known keys first, in PROVENANCE_LABELS order."""
    keys = [k for k in PROVENANCE_LABELS if k in provenance] + sorted(k for k in provenance if k not in PROVENANCE_LABELS)
    items = []
    for key in keys:
        value = provenance[key]
        if key == "training_data" and isinstance(value, dict) and value.get("summary"):
            value = value["summary"]  # the sentence; the per-source counts are in the API
        text = value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True)
        label = PROVENANCE_LABELS.get(key, key.replace("_", " ").capitalize())
        url = _job_url(value) if key == "job" and staff else ""
        items.append({"label": label, "text": text, "multiline": "\n" in text, "url": url})
    return items


def _job_url(job) -> str:
    # The gap-filling job's staff page, when the generation app provides one.
    try:
        return reverse("generation:job_detail", args=[int(job)])
    except (NoReverseMatch, TypeError, ValueError):
        return ""


def _fill_gaps_url(row) -> str:
    """The staff gap-filling planner preset to this condition's empty skin types ("" if none)."""
    gaps = [cell.skin_type for cell in row.cells if cell.skin_type is not None and cell.is_empty]
    try:
        base = reverse("generation:fill_gaps")
    except NoReverseMatch:
        return ""
    query = urlencode({"conditions": row.condition.slug, "skin_types": gaps, "target": 10}, doseq=True)
    return f"{base}?{query}" if gaps else ""


def _search_page(
    request: HttpRequest,
    form: SearchForm,
    results: Results | None,
    *,
    query: SearchQuery | None = None,
    status: int = 200,
    extra: dict | None = None,
) -> HttpResponse:
    context = {
        "form": form,
        "results": results,
        "query": query or SearchQuery(),
        "summary": _summary(query, results) if results else "",
        "conditions": condition_names(),
        "photo_limit": upload_limit(),
        "photo_form": form if form.is_photo else PhotoSearchForm(initial=_filter_initial(request)),
        **(extra or {}),
    }
    return render(request, "atlas/search.html", context, status=status)


def _filter_initial(request: HttpRequest) -> dict:
    # The photo form carries the text form's filters (JS keeps them in step before it posts).
    return {"condition": request.GET.get("condition", ""), "fitzpatrick": request.GET.getlist("fitzpatrick"), "origin": request.GET.get("origin", "")}


def _photo_throttled(request: HttpRequest, wait: int) -> HttpResponse:
    error = f"Too many photo searches from your address; nothing was searched. Try again in {wait} seconds."
    response = _search_page(request, PhotoSearchForm(), None, status=429, extra={"photo_error": error})
    response["Retry-After"] = str(wait)
    return response


def _preview(data: bytes) -> str:
    """The searched photo, small and re-encoded (no metadata), as a data URL: shown back, never stored."""
    try:
        pixels = decode_upload(data)
    except IngestionError:
        return ""
    pixels.thumbnail((240, 240))
    buffer = io.BytesIO()
    pixels.convert("RGB").save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _summary(query: SearchQuery | None, results: Results) -> str:
    """One line saying what the results are, e.g. "Tinea · skin type V, VI · synthetic only"."""
    query = query or SearchQuery()
    if results.mode == "photo":
        parts = ["Images like your photo"]
    elif results.mode == "similar" and query.like is not None:
        parts = [f"Images like this {query.like.condition.name.lower()} image"]
    else:
        parts = [", ".join(c.name for c in results.conditions) or "All conditions"]
    if results.mode == "photo" and results.conditions:
        parts.append(", ".join(c.name for c in results.conditions))
    types = [roman(t) for t in query.skin_types if t is not None] + (["unknown"] if None in query.skin_types else [])
    if types:
        parts.append("skin type " + ", ".join(types))
    if query.origin:
        parts.append(f"{query.origin} only")
    if query.source:
        parts.append(f"source {query.source}")
    if query.licence:
        parts.append(f"licence {query.licence}")
    return " · ".join(parts)


__all__ = [
    "condition_detail", "condition_list", "coverage", "home", "image_detail", "image_file", "image_list", "search", "search_photo",
    "skin_type_detail",
]  # fmt: skip
