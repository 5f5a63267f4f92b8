"""Reader-study pages. Thin: parse input, call one service, render.

Staff create studies, invite readers and read results. Readers (an account with an invite, or
the browser that first opened a one-time link) answer one image at a time; they never see the
truth, the image's catalogue id or anyone else's answers. Quiz pages: quiz_views.py.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generation.experiments import reader_studies as svc
from generation.experiments.forms import InviteForm, RealismAnswerForm, StudyCreateForm
from generation.models import ReaderStudy, StudyItem
from generation.views import staff_required


def _session_key(request: HttpRequest) -> str:
    if not request.session.session_key:
        request.session.save()
    return request.session.session_key


@staff_required
@require_http_methods(["GET", "POST"])
def study_list(request: HttpRequest) -> HttpResponse:
    form = StudyCreateForm(request.POST or None)
    unmatched = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            study = svc.reader_study_create(
                name=data["name"], kind=data["kind"], per_condition=data["per_condition"],
                conditions=[c.slug for c in data["conditions"]], skin_types=data["skin_types"], seed=data["seed"],
                created_by=request.user, unmatched=data["unmatched"] or svc.Unmatched.REFUSE,
            )
        except svc.StudyUnmatched as exc:
            unmatched = exc.plan  # the page shows the warnings and offers to restrict the types
        except svc.StudyError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Study created with {study.items.count()} images.")
            return redirect("generation:experiments:study_detail", public_id=study.public_id)
    studies = ReaderStudy.objects.all()[:50]
    return render(request, "experiments/study_list.html", {"form": form, "studies": studies, "unmatched": unmatched})


@staff_required
@require_http_methods(["GET", "POST"])
def study_detail(request: HttpRequest, public_id) -> HttpResponse:
    study = get_object_or_404(ReaderStudy, public_id=public_id)
    form = InviteForm(request.POST or None)
    new_links: list[tuple[str, str]] = []
    if request.method == "POST" and form.is_valid():
        try:
            made = svc.study_invites_create(study=study, usernames=form.usernames_list(), links=form.cleaned_data["links"] or 0)
        except svc.StudyError as exc:
            form.add_error(None, str(exc))
        else:
            new_links = [(invite.label, request.build_absolute_uri(reverse("generation:experiments:invite_claim", args=[token])))
                         for invite, token in made if token]
            form = InviteForm()
    context = {"study": study, "form": form, "new_links": new_links, "invites": study.invites.select_related("user"),
               "items": study.items.count(), "balance": svc.study_balance(study=study), "read_url": request.build_absolute_uri(
                   reverse("generation:experiments:read", args=[study.public_id]))}
    return render(request, "experiments/study_detail.html", context)


@staff_required
@require_POST
def study_set_open(request: HttpRequest, public_id) -> HttpResponse:
    """Close or reopen a study from its page; a closed study refuses answers, keeps everything."""
    study = get_object_or_404(ReaderStudy, public_id=public_id)
    is_open = request.POST.get("open") == "1"
    svc.reader_study_set_open(study=study, is_open=is_open)
    messages.success(request, "Study reopened: readers can answer again." if is_open
                     else "Study closed: readers can no longer answer.")
    return redirect("generation:experiments:study_detail", public_id=study.public_id)


@staff_required
@require_GET
def study_results(request: HttpRequest, public_id) -> HttpResponse:
    study = get_object_or_404(ReaderStudy, public_id=public_id)
    return render(request, "experiments/study_results.html", {"study": study, "results": svc.study_results(study=study)})


@staff_required
@require_GET
def study_results_png(request: HttpRequest, public_id) -> HttpResponse:
    study = get_object_or_404(ReaderStudy, public_id=public_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = svc.study_results_plot(study=study, path=Path(tmp) / "fig10.png")
        return HttpResponse(path.read_bytes(), content_type="image/png")


@staff_required
@require_GET
def study_results_csv(request: HttpRequest, public_id) -> HttpResponse:
    study = get_object_or_404(ReaderStudy, public_id=public_id)
    response = HttpResponse(svc.study_results_csv(study=study), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="reader-study-{study.public_id}.csv"'
    return response


@require_GET
def invite_claim(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invite = svc.study_invite_claim(token=token, session_key=_session_key(request))
    except svc.StudyError as exc:
        return render(request, "experiments/read_refused.html", {"reason": str(exc)}, status=403)
    return redirect("generation:experiments:read", public_id=invite.study.public_id)


def _reader(request: HttpRequest, study: ReaderStudy):
    return svc.study_invite_for(study=study, user=request.user, session_key=request.session.session_key)


@require_http_methods(["GET", "POST"])
def read(request: HttpRequest, public_id) -> HttpResponse:
    study = get_object_or_404(ReaderStudy, public_id=public_id, kind=ReaderStudy.Kind.REALISM)
    invite = _reader(request, study)
    if invite is None:
        reason = "This study is by invitation: open the link you were sent, or sign in with the invited account."
        return render(request, "experiments/read_refused.html", {"reason": reason}, status=403)
    form = RealismAnswerForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                svc.reader_answer_record(invite=invite, item_token=form.cleaned_data["item"],
                                         judged_real=form.cleaned_data["origin"] == "real",
                                         shows_condition=form.cleaned_data["shows"] == "yes")
            except svc.StudyError as exc:
                messages.error(request, str(exc))
            return redirect("generation:experiments:read", public_id=study.public_id)
    item = svc.study_next_item(invite=invite)
    done, total = svc.study_progress(invite=invite)
    if item is None:
        return render(request, "experiments/read_done.html", {"study": study, "done": done})
    if request.method == "GET":
        form = RealismAnswerForm(initial={"item": item.token})
    form.fields["shows"].label = f"Does this image show {item.condition.name}?"
    return render(request, "experiments/read.html", {"study": study, "item": item, "form": form, "done": done,
                                                     "total": total, "closed": not study.is_open})


@require_GET
def item_image(request: HttpRequest, token: str) -> HttpResponse:
    """The study image behind an opaque token, for staff, the study's readers or quiz visitors.
    Every image answers with the same bytes count and the same headers (no Last-Modified, an
    ETag of the bytes), so nothing but the pixels differs between real and synthetic."""
    item = get_object_or_404(StudyItem.objects.select_related("study", "image"), token=token)
    study = item.study
    allowed = (request.user.is_active and request.user.is_staff) or study.kind == ReaderStudy.Kind.QUIZ \
        or _reader(request, study) is not None
    if not allowed:
        return HttpResponseForbidden("Not a reader of this study.")
    try:
        data = svc.study_image_png(item=item)
    except svc.StudyError as exc:
        raise Http404(str(exc)) from exc
    response = HttpResponse(data, content_type="image/png")
    response["ETag"] = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    # no-transform: a proxy must not compress, which would make the lengths differ again.
    response["Cache-Control"] = "private, max-age=3600, no-transform"
    return response
