"""The look-alike drill page: "which of these four is CONDITION?" (search/lookalikes.py builds it).

Stateless: a drill is its four image ids in the answer form, so answering twice or replaying an
answer only shows the same feedback again; nothing is stored.
"""

from __future__ import annotations

import random
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from atlas.condition_content import EDUCATIONAL_NOTE
from atlas.models import Condition
from atlas.skin import FITZPATRICK_TYPES, roman
from search.lookalikes import DrillError, drill_build, drill_check


@never_cache  # every visit draws a new drill
@require_GET
def condition_drill(request: HttpRequest, slug: str) -> HttpResponse:
    condition = get_object_or_404(Condition.objects.public(), slug=slug)
    context = {"condition": condition, "educational_note": EDUCATIONAL_NOTE, "skin_types": FITZPATRICK_TYPES}
    try:
        skin_type = _skin_type(request.GET.get("type", ""))
        if "choice" in request.GET:
            drill = drill_check(condition=condition, option_ids=_ids(request.GET.get("options", "")), choice=_id(request.GET["choice"]))
            context["chosen"] = next(o for o in drill.options if str(o.image.public_id) == request.GET["choice"])
        else:
            drill = drill_build(condition=condition, skin_type=skin_type, rng=random.Random())
    except DrillError as exc:
        context |= {"error": exc.message, "code": exc.code, "other_types": [{"number": t, "label": roman(t)} for t in exc.skin_types]}
        return render(request, "atlas/drill.html", context, status=400 if exc.code.startswith("bad_") else 200)
    context |= {"drill": drill, "option_ids": ",".join(str(o.image.public_id) for o in drill.options)}
    return render(request, "atlas/drill.html", context)


def _skin_type(raw: str) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or int(raw) not in FITZPATRICK_TYPES:
        raise DrillError("bad_skin_type", "Choose a Fitzpatrick type from I to VI (type=1 to 6).")
    return int(raw)


def _id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise DrillError("bad_answer", "Choose one of the drill's pictures.") from None


def _ids(raw: str) -> list[UUID]:
    try:
        return [UUID(part) for part in raw.split(",") if part]
    except ValueError:
        raise DrillError("bad_drill", "This drill is not complete; start a new one.") from None


__all__ = ["condition_drill"]
