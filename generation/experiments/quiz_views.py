"""Quiz pages: the standing quiz (always open), staff-made quizzes, feedback beside the picture,
the end screen with the missed pictures, and a signed-in learner's progress. Thin: parse input,
call one service (generation.experiments.quiz), render.

Every answer is a POST that redirects to the answered picture's own page (feedback stays with
the picture it is about); the next picture is a link from there.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from atlas.models import Condition
from generation.experiments import quiz as svc
from generation.experiments import reader_studies as studies
from generation.experiments.forms import QuizAnswerForm
from generation.models import ReaderStudy


def _session_key(request: HttpRequest) -> str:
    if not request.session.session_key:
        request.session.save()
    return request.session.session_key


def _names(slugs: list[str]) -> dict[str, str]:
    return dict(Condition.objects.filter(slug__in=slugs).values_list("slug", "name"))


def _answer_form(token: str, choices: list[str]) -> QuizAnswerForm:
    names = _names(choices)
    return QuizAnswerForm(initial={"item": token}, choices=[(s, names.get(s, s)) for s in choices])


@require_GET
def quiz_list(request: HttpRequest) -> HttpResponse:
    quizzes = ReaderStudy.objects.filter(kind=ReaderStudy.Kind.QUIZ, is_open=True)
    context = {"quizzes": quizzes}
    if request.user.is_authenticated:
        context["progress"] = svc.learner_progress(user=request.user)
    return render(request, "experiments/quiz_list.html", context)


@require_POST
def quiz_start(request: HttpRequest) -> HttpResponse:
    try:
        round_ = svc.quiz_round_start(user=request.user, session_key=_session_key(request))
    except svc.QuizError as exc:
        messages.error(request, str(exc))
        return redirect("generation:experiments:quiz_list")
    return redirect("generation:experiments:quiz_round", public_id=round_.public_id)


def _round(request: HttpRequest, public_id):
    try:
        return svc.quiz_round_for(public_id=public_id, user=request.user, session_key=request.session.session_key)
    except svc.QuizError as exc:
        raise Http404(str(exc)) from exc


@require_GET
def quiz_round(request: HttpRequest, public_id) -> HttpResponse:
    """Where a round goes on: its next unanswered picture, or the end screen."""
    round_ = _round(request, public_id)
    item = svc.quiz_round_next(round_=round_)
    if item is not None:
        return redirect("generation:experiments:quiz_round_item", public_id=public_id, position=item.position)
    summary = svc.quiz_round_summary(round_=round_)
    return render(request, "experiments/quiz_score.html", {
        "title": "", "summary": summary, "picture_view": "generation:experiments:quiz_picture",
        "again_url": reverse("generation:experiments:quiz_list"), "signed_in": round_.user_id is not None})


@require_http_methods(["GET", "POST"])
def quiz_round_item(request: HttpRequest, public_id, position: int) -> HttpResponse:
    round_ = _round(request, public_id)
    if request.method == "POST":
        form = QuizAnswerForm(request.POST, choices=[(s, s) for s in Condition.objects.values_list("slug", flat=True)])
        if not form.is_valid():
            messages.error(request, "Choose one of the offered conditions.")
            return redirect("generation:experiments:quiz_round_item", public_id=public_id, position=position)
        try:
            outcome = svc.quiz_answer_record(round_=round_, item_token=form.cleaned_data["item"],
                                             chosen=form.cleaned_data["chosen"])
        except svc.QuizError as exc:
            messages.error(request, str(exc))
            return redirect("generation:experiments:quiz_round_item", public_id=public_id, position=position)
        if outcome.refused_change:
            messages.info(request, "You had already answered this picture; your first answer counts.")
        return redirect("generation:experiments:quiz_round_item", public_id=public_id, position=outcome.item.position)
    try:
        item = svc.quiz_round_item(round_=round_, position=position)
    except svc.QuizError as exc:
        raise Http404(str(exc)) from exc
    total = round_.items.count()
    context = {"title": "Quiz", "position": item.position, "total": total, "token": item.token,
               "picture_view": "generation:experiments:quiz_picture", "is_synthetic": item.is_synthetic,
               "skin_type": item.skin_type, "is_review": item.is_review}
    if not item.is_answered:
        context["form"] = _answer_form(item.token, item.choices)
        return render(request, "experiments/quiz.html", context)
    following = svc.quiz_round_next(round_=round_)
    context.update(feedback_context(right=item.is_correct, condition=item.condition, chosen=item.chosen,
                                    image=item.image, signed_in=round_.user_id is not None))
    context["next_url"] = (reverse("generation:experiments:quiz_round_item", args=[public_id, following.position])
                           if following else reverse("generation:experiments:quiz_round", args=[public_id]))
    return render(request, "experiments/quiz_feedback.html", context)


def feedback_context(*, right: bool, condition: Condition, chosen: Condition, image, signed_in: bool) -> dict:
    return {"right": right, "condition": condition, "chosen": chosen, "image_public_id": svc.public_image_id(image),
            "signed_in": signed_in, "confused": not right and svc.often_confused(condition, chosen)}


@require_GET
def quiz_picture(request: HttpRequest, token: str) -> HttpResponse:
    """A round's picture behind its opaque token (the images are public; the token hides the answer)."""
    try:
        data = svc.quiz_picture_jpeg(token=token)
    except svc.QuizError as exc:
        raise Http404(str(exc)) from exc
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required(login_url="accounts:login")
@require_GET
def quiz_progress(request: HttpRequest) -> HttpResponse:
    return render(request, "experiments/quiz_progress.html", {"progress": svc.learner_progress(user=request.user)})


# --- staff-made quizzes ----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def quiz(request: HttpRequest, public_id) -> HttpResponse:
    study = get_object_or_404(ReaderStudy, public_id=public_id, kind=ReaderStudy.Kind.QUIZ)
    invite = studies.study_invite_for(study=study, session_key=_session_key(request), create=True)
    if request.method == "POST":
        form = QuizAnswerForm(request.POST, choices=[(s, s) for s in Condition.objects.values_list("slug", flat=True)])
        if not form.is_valid():
            messages.error(request, "Choose one of the offered conditions.")
            return redirect("generation:experiments:quiz", public_id=study.public_id)
        try:
            outcome = svc.staff_quiz_answer_record(invite=invite, item_token=form.cleaned_data["item"],
                                                   chosen=form.cleaned_data["chosen"], user=request.user)
        except svc.QuizError as exc:
            messages.error(request, str(exc))
            return redirect("generation:experiments:quiz", public_id=study.public_id)
        if outcome.refused_change:
            messages.info(request, "You had already answered this picture; your first answer counts.")
        return redirect("generation:experiments:quiz_answer", public_id=study.public_id, token=outcome.answer.item.token)
    item = studies.study_next_item(invite=invite)
    done, total = studies.study_progress(invite=invite)
    if item is None:
        summary = svc.staff_quiz_summary(invite=invite, user=request.user)
        return render(request, "experiments/quiz_score.html", {
            "title": study.name, "summary": summary, "picture_view": "generation:experiments:item_image",
            "again_url": reverse("generation:experiments:quiz_list"), "signed_in": request.user.is_authenticated})
    form = _answer_form(item.token, item.choices)
    return render(request, "experiments/quiz.html", {
        "title": study.name, "position": done + 1, "total": total, "token": item.token, "form": form,
        "picture_view": "generation:experiments:item_image", "is_synthetic": not item.is_real, "skin_type": item.skin_type})


@require_GET
def quiz_answer(request: HttpRequest, public_id, token: str) -> HttpResponse:
    """The feedback on one answered picture of a staff-made quiz, beside that picture."""
    study = get_object_or_404(ReaderStudy, public_id=public_id, kind=ReaderStudy.Kind.QUIZ)
    invite = studies.study_invite_for(study=study, session_key=request.session.session_key)
    answer = svc.staff_quiz_answer(invite=invite, item_token=token) if invite else None
    if answer is None:
        raise Http404("you have not answered this picture")
    done, total = studies.study_progress(invite=invite)
    position = invite.answers.filter(item__position__lte=answer.item.position).count()
    context = {"title": study.name, "position": position, "total": total, "token": token,
               "picture_view": "generation:experiments:item_image", "is_synthetic": not answer.item.is_real,
               "skin_type": answer.item.skin_type, "next_url": reverse("generation:experiments:quiz", args=[study.public_id])}
    context.update(feedback_context(right=answer.chosen_id == answer.item.condition_id, condition=answer.item.condition,
                                    chosen=answer.chosen, image=answer.item.image, signed_in=request.user.is_authenticated))
    context["last"] = done == total
    return render(request, "experiments/quiz_feedback.html", context)
