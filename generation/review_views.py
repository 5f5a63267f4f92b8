"""The review queue (staff with the reviewer permission): thin views over generation.review.

GET shows the oldest pending synthetic images, each beside real references and its gate
results; POST decides one image (a card's own button) or the checked ones (batch). The page
works without JavaScript; review.js adds the keyboard (j/k move, x select, a approve, r reject).
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from generation.review import ReviewError, can_review, review_queue, review_queue_count, synthetic_images_review

QUEUE_PAGE = 20


def reviewer_required(view):
    """Anonymous visitors go to the login page; everyone else without the permission gets 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if can_review(request.user):
            return view(request, *args, **kwargs)
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return HttpResponseForbidden("The review queue is for reviewers (staff with the review permission).")

    return wrapper


@reviewer_required
@require_GET
def review_queue_page(request: HttpRequest) -> HttpResponse:
    context = {"items": review_queue(limit=QUEUE_PAGE), "waiting": review_queue_count()}
    return render(request, "generation/review_queue.html", context)


@reviewer_required
@require_POST
def review_decide(request: HttpRequest) -> HttpResponse:
    # A card's own button posts "approve <id>" / "reject <id>"; the batch buttons post the
    # decision and the checked images.
    decision, _, one = request.POST.get("decide", "").partition(" ")
    if not one:
        decision, ids = request.POST.get("decision", ""), request.POST.getlist("image")
    else:
        ids = [one]
    try:
        outcome = synthetic_images_review(
            public_ids=ids, decision=decision, reviewer=request.user, reason=request.POST.get("reason", "")
        )
    except ReviewError as exc:
        messages.error(request, exc.message)
        return redirect("generation:review_queue")
    done = "approved" if outcome.decision == "approve" else "rejected"
    count = len(outcome.decided)
    messages.success(request, f"{count} image{'s' if count != 1 else ''} {done}.")
    for public_id, why in outcome.conflicts.items():
        messages.warning(request, f"Image {public_id} was not changed: it is {why} (the first decision stands).")
    return redirect("generation:review_queue")
