"""Clinical review of synthetic images (docs/gap-filling.md, Review).

Gap filling stores synthetic images as `pending` (ATLAS_SYNTHETIC_REVIEW); a reviewer (the
`generation.review_synthetic` permission, the Reviewers group) approves or rejects each one
beside real references. Only approved ones are public (atlas.models.public_q, the one rule).

A decision is one conditional UPDATE ... WHERE review_state = 'pending' that writes the state
and the provenance's review entry together: when two reviewers decide the same image at once,
the first UPDATE wins and the second matches no row and is told who decided it. Nothing is
half-written: a single UPDATE is atomic, and a batch first checks every image it names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from atlas.models import Image
from atlas.services.ingestion import enqueue_after_ingest
from atlas.skin import roman

REVIEW_PERMISSION = "generation.review_synthetic"
MAX_BATCH = 200
MAX_REASON = 500
DECISIONS = {"approve": Image.ReviewState.APPROVED, "reject": Image.ReviewState.REJECTED}


class ReviewError(ValueError):
    """A review request we refuse (nothing was written); `code` is stable for programs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def can_review(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_staff and user.has_perm(REVIEW_PERMISSION))


# --- reads ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    image: Image
    references: list[Image]  # real public images of the condition on this and neighbouring types
    gates: dict | None  # the automatic gates' results, when the gap filler recorded them

    @property
    def reference_types(self) -> str:
        skin = self.image.fitzpatrick_type
        return f"{roman(max(1, skin - 1))}-{roman(min(6, skin + 1))}" if skin else "unknown"

    @property
    def gate_rows(self) -> list[dict]:
        """The gate results as rows (name, passed or None, detail): shown as recorded, whatever
        the gates write, so the queue never hides a result it does not know."""
        rows = []
        for name, value in (self.gates or {}).items():
            passed = value.get("passed") if isinstance(value, dict) else (value if isinstance(value, bool) else None)
            rest = {k: v for k, v in value.items() if k != "passed"} if isinstance(value, dict) else value
            detail = "" if isinstance(rest, bool) else json.dumps(rest, sort_keys=True, default=str)
            rows.append({"name": name.replace("_", " "), "passed": passed if isinstance(passed, bool) else None,
                         "detail": detail})
        return rows


def review_queue(*, limit: int = 20) -> list[QueueItem]:
    """The oldest synthetic images waiting for review, each with its real references."""
    images = list(
        Image.objects.pending_review().synthetic().select_related("condition", "source").order_by("created_at", "id")[:limit]
    )
    return [QueueItem(image, review_references(image), _gates(image)) for image in images]


def review_queue_count() -> int:
    return Image.objects.pending_review().synthetic().count()


def review_references(image: Image, *, per_type: int = 2) -> list[Image]:
    """Real public images of the same condition on the image's skin type and its neighbours
    (type - 1 .. type + 1), up to `per_type` each, newest first: what the reviewer compares with."""
    skin = image.fitzpatrick_type
    types = [t for t in (skin - 1, skin, skin + 1) if 1 <= t <= 6] if skin else []
    references: list[Image] = []
    for skin_type in types:
        references += list(
            Image.objects.public().real().filter(condition_id=image.condition_id, fitzpatrick_type=skin_type)
            .select_related("condition").order_by("-created_at", "-id")[:per_type]
        )
    return references


def _gates(image: Image) -> dict | None:
    gates = image.provenance.get("gates") if isinstance(image.provenance, dict) else None
    return gates if isinstance(gates, dict) and gates else None


# --- writes ---------------------------------------------------------------------------------


@dataclass
class ReviewOutcome:
    decision: str  # approve | reject
    decided: list[UUID] = field(default_factory=list)
    # Images someone else decided first: public id -> what they decided and when (first wins).
    conflicts: dict[UUID, str] = field(default_factory=dict)


def synthetic_images_review(
    *, public_ids: Sequence[UUID | str], decision: str, reviewer, reason: str = ""
) -> ReviewOutcome:
    """Approve or reject synthetic images pending review, one or a batch.

    Refused as a whole (ReviewError, nothing written) when the reviewer lacks the permission,
    the decision is unknown, a rejection has no reason, or an image is unknown or not
    synthetic. An image that is no longer pending (another reviewer decided it first, even a
    moment before our UPDATE) is reported in `conflicts`: their decision stands. When no image
    of the request could be decided, ReviewError("not_pending") says who decided them.
    """
    if not can_review(reviewer):
        raise ReviewError("permission_denied", "Reviewing synthetic images needs the reviewer permission.")
    if decision not in DECISIONS:
        raise ReviewError("invalid", f"decision must be approve or reject, got {decision!r}")
    reason = " ".join(str(reason).split())[:MAX_REASON]
    if decision == "reject" and not reason:
        raise ReviewError("reason_required", "Say why the image is rejected (the reason is kept in its provenance).")
    ids = _uuids(public_ids)
    images = {image.public_id: image for image in Image.objects.filter(public_id__in=ids)}
    _check_batch(ids, images)
    outcome = ReviewOutcome(decision=decision)
    with transaction.atomic():
        for public_id in ids:
            if _decide(images[public_id], DECISIONS[decision], reviewer, reason):
                outcome.decided.append(public_id)
            else:
                outcome.conflicts[public_id] = _decided_by(public_id)
        if not outcome.decided:
            raise ReviewError("not_pending", "; ".join(f"image {i} is {why}" for i, why in outcome.conflicts.items()))
        decided_pks = [images[i].pk for i in outcome.decided]
        # Approved images become searchable (embedding); a rejected one loses any vector it had.
        transaction.on_commit(lambda: _enqueue_followups(decided_pks))
    return outcome


def _uuids(public_ids: Sequence[UUID | str]) -> list[UUID]:
    ids: list[UUID] = []
    for value in public_ids:
        try:
            ids.append(value if isinstance(value, UUID) else UUID(str(value)))
        except ValueError:
            raise ReviewError("invalid", f"not an image id: {str(value)[:80]!r}") from None
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise ReviewError("invalid", "choose at least one image")
    if len(ids) > MAX_BATCH:
        raise ReviewError("invalid", f"at most {MAX_BATCH} images at once, got {len(ids)}")
    return ids


def _check_batch(ids: list[UUID], images: dict[UUID, Image]) -> None:
    for public_id in ids:
        image = images.get(public_id)
        if image is None:
            raise ReviewError("not_found", f"no image {public_id}")
        if not image.is_synthetic:
            raise ReviewError("not_synthetic", f"image {public_id} is a photograph: only synthetic images are reviewed")


def _decide(image: Image, state: str, reviewer, reason: str) -> bool:
    """The conditional UPDATE: True when this call made the decision."""
    now = timezone.now()
    entry = {"state": state, "reviewer": reviewer.get_username(), "at": now.isoformat(timespec="seconds")}
    if reason:
        entry["reason"] = reason
    provenance = {**image.provenance, "review": entry}
    pending = Q(pk=image.pk, origin=Image.Origin.SYNTHETIC, review_state=Image.ReviewState.PENDING)
    return Image.objects.filter(pending).update(review_state=state, provenance=provenance, updated_at=now) == 1


def _decided_by(public_id: UUID) -> str:
    image = Image.objects.filter(public_id=public_id).only("review_state", "provenance").first()
    if image is None:
        return "deleted meanwhile"
    review = image.provenance.get("review") or {}
    who = f" by {review['reviewer']}" if review.get("reviewer") else ""
    when = f" at {review['at']}" if review.get("at") else ""
    return f"already {image.get_review_state_display().lower()}{who}{when}"


def _enqueue_followups(image_ids: list[int]) -> None:
    for pk in image_ids:
        enqueue_after_ingest(pk)

