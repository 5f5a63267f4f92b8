"""Look-alikes: images of *other* conditions that an image is often confused with, on the same
or a neighbouring skin type, and drills built from them ("which of these four is CONDITION?").

Look-alike pairs come from two places, and every answer says which:
- **listed**: the condition's teaching text names the other condition (Condition.lookalikes,
  seeded from atlas/condition_content.py, edited in the admin);
- **similar**: the search model's embedding puts images of the other condition nearest to this
  one (search.query.search_similar, filtered to other conditions and to the skin types).

Only public images take part (the filters read Image.objects.public(), i.e. public_q). Without
a search model or index the listed look-alikes still work, read from the catalogue.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from uuid import UUID

from atlas.filters import ImageFilters, images_filtered
from atlas.models import Condition, Image
from atlas.skin import FITZPATRICK_TYPES, roman
from search.errors import SearchUnavailable
from search.query import SearchHit, search_similar

DRILL_DISTRACTORS = 3  # "which of these four": the answer and three look-alikes
SIMILAR_DEPTH = 24  # nearest images fetched to find the conditions the embedding confuses


class DrillError(Exception):
    """A drill cannot be built or an answer cannot be checked; `message` says why in words."""

    def __init__(self, code: str, message: str, *, skin_types: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.skin_types = skin_types  # where a drill of this condition is possible instead


@dataclass(frozen=True)
class Lookalike:
    image: Image
    listed: bool  # the condition's teaching text lists this image's condition as a look-alike
    similar: bool  # the embedding puts this condition among the nearest to the image

    @property
    def basis(self) -> str:
        if self.listed and self.similar:
            return "listed and similar"
        return "listed" if self.listed else "similar"


@dataclass
class Lookalikes:
    items: list[Lookalike]
    skin_types: tuple[int, ...]  # the skin types searched (the image's and its neighbours)
    unavailable: str = ""  # why the embedding could not be asked (listed look-alikes still shown)


def neighbouring_types(skin_type: int | None) -> tuple[int, ...]:
    """The type and the types next to it (type V: IV, V, VI); () when the type is unknown."""
    if skin_type is None:
        return ()
    return tuple(t for t in (skin_type - 1, skin_type, skin_type + 1) if t in FITZPATRICK_TYPES)


def listed_lookalikes(condition: Condition) -> list[Condition]:
    """The public conditions the teaching text lists as look-alikes of `condition`."""
    return list(condition.lookalikes.public().exclude(pk=condition.pk).order_by("name"))


def lookalikes_for_image(*, image: Image, k: int = 6) -> Lookalikes:
    """Up to `k` public images of other conditions, one per condition, on the image's skin type or
    a neighbouring one: listed look-alikes first (their nearest image), then the conditions the
    embedding finds nearest."""
    types = neighbouring_types(image.fitzpatrick_type)
    listed = [c.slug for c in listed_lookalikes(image.condition)]
    others = _other_conditions(image.condition)
    similar_hits, unavailable = _nearest(image, others, types)
    similar_order = _distinct_conditions(similar_hits)[:k]
    items: list[Lookalike] = []
    for slug, candidate in _one_per_condition(image, listed, types, similar_hits, unavailable).items():
        items.append(Lookalike(candidate, listed=True, similar=slug in similar_order))
    for hit in similar_hits:
        slug = hit.image.condition.slug
        if slug in similar_order and slug not in listed and all(i.image.condition_id != hit.image.condition_id for i in items):
            items.append(Lookalike(hit.image, listed=False, similar=True))
    return Lookalikes(items=items[:k], skin_types=types, unavailable=unavailable)


# --- drills ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrillOption:
    image: Image
    correct: bool  # the image shows the drill's condition
    listed: bool = False  # a distractor whose condition the teaching text lists as a look-alike
    similar: bool = False  # a distractor the embedding chose (nearest on this skin type)

    @property
    def basis(self) -> str:
        if self.correct:
            return "answer"
        if self.listed and self.similar:
            return "listed and similar"
        return "listed" if self.listed else "similar"


@dataclass
class Drill:
    condition: Condition
    skin_type: int
    options: list[DrillOption] = field(default_factory=list)  # shuffled
    unavailable: str = ""  # the embedding could not be asked: listed look-alikes only

    @property
    def answer(self) -> DrillOption:
        return next(option for option in self.options if option.correct)


def drill_build(*, condition: Condition, skin_type: int | None = None, rng: random.Random | None = None) -> Drill:
    """One drill: a public image of `condition` and three public images of look-alike conditions on
    the same skin type. Without `skin_type`, a type with images of the condition is drawn.
    Raises DrillError (no images, no look-alikes, too few on this type)."""
    rng = rng or random.Random()
    if skin_type is not None and skin_type not in FITZPATRICK_TYPES:
        raise DrillError("bad_skin_type", "Choose a Fitzpatrick type from I to VI.")
    available = _types_with_images(condition)
    if not available:
        raise DrillError("no_images", f"There are no public images of {condition.name} with a known skin type yet.")
    if skin_type is None:
        errors = []
        for candidate in rng.sample(available, len(available)):
            try:
                return _drill_on(condition, candidate, rng)
            except DrillError as exc:
                errors.append(exc)
        if all(e.code == "no_lookalikes" for e in errors):
            raise errors[0]
        raise DrillError(
            "too_few_lookalikes",
            f"No skin type has public images of {DRILL_DISTRACTORS} look-alike conditions of {condition.name} yet: "
            "a drill needs them on the same skin type as the answer.",
        )
    if skin_type not in available:
        raise DrillError(
            "no_images", f"There are no public images of {condition.name} on type {roman(skin_type)} skin yet.",
            skin_types=tuple(available),
        )
    return _drill_on(condition, skin_type, rng)


def drill_check(*, condition: Condition, option_ids: list[UUID], choice: UUID) -> Drill:
    """The drill a learner answered, rebuilt from its image ids and checked: every option must still
    be public, exactly one must show `condition`, and the choice must be one of them."""
    if not 2 <= len(option_ids) <= DRILL_DISTRACTORS + 1 or len(set(option_ids)) != len(option_ids):
        raise DrillError("bad_drill", "This drill is not complete; start a new one.")
    if choice not in option_ids:
        raise DrillError("bad_answer", "Choose one of the drill's pictures.")
    rows = {i.public_id: i for i in Image.objects.public().filter(public_id__in=option_ids).select_related("condition", "source")}
    if len(rows) != len(option_ids):
        raise DrillError("stale_drill", "One of this drill's pictures is no longer public; start a new one.")
    images = [rows[i] for i in option_ids]
    if sum(1 for i in images if i.condition_id == condition.pk) != 1:
        raise DrillError("bad_drill", f"This is not a drill for {condition.name}; start a new one.")
    listed = {c.pk for c in listed_lookalikes(condition)}
    options = [
        DrillOption(i, correct=i.condition_id == condition.pk, listed=i.condition_id in listed, similar=i.condition_id not in listed)
        for i in images
    ]  # a distractor the text does not list was chosen by the embedding
    skin_type = next(o.image.fitzpatrick_type for o in options if o.correct)
    return Drill(condition=condition, skin_type=skin_type, options=options)


def _drill_on(condition: Condition, skin_type: int, rng: random.Random) -> Drill:
    targets = list(
        Image.objects.public().filter(condition=condition, fitzpatrick_type=skin_type).order_by("id").values_list("id", flat=True)[:500]
    )
    target = Image.objects.select_related("condition", "source").get(pk=rng.choice(targets))
    listed = [c.slug for c in listed_lookalikes(condition)]
    hits, unavailable = _nearest(target, _other_conditions(condition), (skin_type,))
    if not listed and not hits:
        why = (
            "the search model is not available to find similar-looking conditions"
            if unavailable
            else f"no other condition has public images on type {roman(skin_type)} skin"
        )
        raise DrillError("no_lookalikes", f"{condition.name} has no listed look-alikes, and {why}, so there is nothing to drill it against.")
    similar = _distinct_conditions(hits)
    options: list[DrillOption] = []
    # Listed look-alikes first, the ones the embedding finds nearest leading; then the embedding's.
    for slug, image in _one_per_condition(target, listed, (skin_type,), hits, unavailable, rng=rng).items():
        options.append(DrillOption(image, correct=False, listed=True, similar=slug in similar[:DRILL_DISTRACTORS]))
    for hit in hits:
        if len(options) >= DRILL_DISTRACTORS:
            break
        if hit.image.condition.slug not in listed and all(o.image.condition_id != hit.image.condition_id for o in options):
            options.append(DrillOption(hit.image, correct=False, similar=True))
    options = options[:DRILL_DISTRACTORS]
    if len(options) < DRILL_DISTRACTORS:
        raise DrillError(
            "too_few_lookalikes",
            f"Only {len(options)} look-alike condition{'s' if len(options) != 1 else ''} of {condition.name} "
            f"{'has' if len(options) == 1 else 'have'} public images on type {roman(skin_type)} skin; a drill needs "
            f"{DRILL_DISTRACTORS}.",
            skin_types=tuple(t for t in _types_with_images(condition) if t != skin_type),
        )
    options.append(DrillOption(target, correct=True))
    rng.shuffle(options)
    return Drill(condition=condition, skin_type=skin_type, options=options, unavailable=unavailable)


# --- helpers --------------------------------------------------------------------------------


def _other_conditions(condition: Condition) -> tuple[str, ...]:
    return tuple(Condition.objects.public().exclude(pk=condition.pk).order_by("slug").values_list("slug", flat=True))


def _types_with_images(condition: Condition) -> list[int]:
    present = Image.objects.public().filter(condition=condition, fitzpatrick_type__isnull=False)
    return sorted(set(present.order_by().values_list("fitzpatrick_type", flat=True).distinct()))


def _nearest(image: Image, conditions: tuple[str, ...], types: tuple[int, ...]) -> tuple[list[SearchHit], str]:
    """(nearest public images of `conditions` on `types`, "") or ([], why search cannot answer)."""
    if not conditions:
        return [], ""
    try:
        hits = search_similar(image=image, filters=ImageFilters(conditions=conditions, skin_types=types), k=SIMILAR_DEPTH).hits
    except SearchUnavailable as exc:
        return [], str(exc)
    # When the types hold none of these conditions, search offers the nearest other types
    # (labelled nearest_type): a look-alike must be on the same or a neighbouring tone.
    return [hit for hit in hits if not hit.nearest_type and (not types or hit.image.fitzpatrick_type in types)], ""


def _distinct_conditions(hits: list[SearchHit]) -> list[str]:
    seen: list[str] = []
    for hit in hits:
        if hit.image.condition.slug not in seen:
            seen.append(hit.image.condition.slug)
    return seen


def _one_per_condition(
    image: Image, slugs: list[str], types: tuple[int, ...], hits: list[SearchHit], unavailable: str, *, rng: random.Random | None = None
) -> dict[str, Image]:
    """For each listed condition with public images on `types`, one image: the one the embedding
    finds nearest to `image` (most confusable first), else one from the catalogue (the image's own
    skin type first, real first; drawn at random for drills)."""
    chosen: dict[str, Image] = {}
    for hit in hits:  # the nearest images of every other condition, already fetched
        if hit.image.condition.slug in slugs:
            chosen.setdefault(hit.image.condition.slug, hit.image)
    unseen = tuple(slug for slug in slugs if slug not in chosen)
    if unseen and not unavailable:
        nearest, _ = _nearest(image, unseen, types)
        for hit in nearest:
            chosen.setdefault(hit.image.condition.slug, hit.image)
    missing = [slug for slug in slugs if slug not in chosen]  # not indexed yet, or search unavailable
    if rng is not None:
        rng.shuffle(missing)
    for slug in missing:
        rows = list(
            images_filtered(ImageFilters(conditions=(slug,), skin_types=types))
            .select_related("condition", "source")
            .order_by("origin", "-created_at", "-id")[:50]  # "real" sorts before "synthetic"
        )
        if not rows:
            continue
        best = min((r.fitzpatrick_type != image.fitzpatrick_type, r.origin) for r in rows)
        candidates = [r for r in rows if (r.fitzpatrick_type != image.fitzpatrick_type, r.origin) == best]
        chosen[slug] = rng.choice(candidates) if rng is not None else candidates[0]
    return chosen
