"""Staff pages of the catalogue. Thin: read through a selector, render."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from atlas.services.skin_tone import MISMATCH_DIFFERENCE, calibration, skin_tone_agreement, skin_tone_mismatches

AUDIT_PAGE_SIZE = 48


@staff_member_required
@require_GET
def skin_tone_audit(request: HttpRequest) -> HttpResponse:
    """Images whose labelled and measured Fitzpatrick types differ by two or more, for review."""
    page = Paginator(skin_tone_mismatches(), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "agreement": skin_tone_agreement(), "difference": MISMATCH_DIFFERENCE,
               "calibration": calibration().name}
    return render(request, "atlas/skin_tone_audit.html", context)
