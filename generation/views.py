"""Staff pages of gap filling: plan and start a job, watch it, cancel it. Thin: parse input,
call one service (generation.gaps), render. Only staff may see, start or cancel jobs."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from atlas.models import Image
from generation.forms import FillGapsForm
from generation.gaps import GapError, gap_plan, generation_job_cancel, generation_job_create, job_cells, job_status
from generation.models import GanCheckpoint, GenerationJob

RECENT_JOBS = 10


def staff_required(view=None, *, as_json: bool = False):
    """Anonymous visitors are sent to the login page (JSON: 403); other non-staff get 403."""

    def decorate(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            user = request.user
            if user.is_active and user.is_staff:
                return view(request, *args, **kwargs)
            if as_json:
                return JsonResponse({"error": "staff only"}, status=403)
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            return HttpResponseForbidden("Gap filling is for staff (curators) only.")

        return wrapper

    return decorate(view) if view is not None else decorate


@staff_required
@require_http_methods(["GET", "POST"])
def fill_gaps(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = FillGapsForm(request.POST)
        if form.is_valid():
            try:
                job = generation_job_create(policy=form.policy(), requested_by=request.user)
            except GapError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Job {job.pk} queued: {job.planned_total} images to generate.")
                return redirect("generation:job_detail", pk=job.pk)
        return _fill_gaps_page(request, form, plan=None, status=400)
    form = FillGapsForm(request.GET) if "target" in request.GET else FillGapsForm(initial={"skin_types": ["5", "6"]})
    plan = None
    if form.is_bound:
        if form.is_valid():
            try:
                plan = gap_plan(policy=form.policy())
            except GapError as exc:
                form.add_error(None, str(exc))
        if not form.is_valid():
            return _fill_gaps_page(request, form, plan=None, status=400)
    return _fill_gaps_page(request, form, plan=plan)


def _fill_gaps_page(request: HttpRequest, form: FillGapsForm, *, plan, status: int = 200) -> HttpResponse:
    context = {
        "form": form,
        "plan": plan,
        "checkpoint": GanCheckpoint.objects.filter(is_active=True).first(),
        "jobs": GenerationJob.objects.select_related("requested_by")[:RECENT_JOBS],
    }
    return render(request, "generation/fill_gaps.html", context, status=status)


@staff_required
@require_GET
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(GenerationJob.objects.select_related("checkpoint", "requested_by"), pk=pk)
    return render(request, "generation/job_detail.html", {"job": job, "cells": job_cells(job), "search": _searchable(job)})


def _searchable(job: GenerationJob) -> dict:
    """How many of the job's visible images search finds yet, and when the rest will be found."""
    from search.indexing import index_searchable_since
    from search.query import searchable_count

    visible = list(Image.objects.public().filter(provenance__job=job.pk).values_list("id", flat=True))
    return {"visible": len(visible), "searchable": searchable_count(visible) if visible else 0, **index_searchable_since()}


@staff_required(as_json=True)
@require_GET
def job_status_json(request: HttpRequest, pk: int) -> JsonResponse:
    job = get_object_or_404(GenerationJob, pk=pk)
    return JsonResponse(job_status(job))


@staff_required
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(GenerationJob, pk=pk)
    try:
        generation_job_cancel(job=job, by=request.user)
    except GapError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Job {job.pk} cancelled; images already stored stay in the atlas.")
    return redirect("generation:job_detail", pk=job.pk)
