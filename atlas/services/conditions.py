"""Conditions that imports create for unmapped labels, and their curation (accept or merge).

An import run with `--create-unmapped-conditions` keeps every row: a label no mapping covers
gets a condition of its own, named from the label and marked `needs_curation`, plus the label
mapping that points at it. Such a condition stays out of the public vocabulary (and its
images out of public reads) until a curator accepts it, or merges it into an existing one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils.text import slugify

from atlas.models import Condition, ConditionLabelMapping, Image


class ConditionCurationError(ValueError):
    """A curation step that cannot be done (what is wrong is in the message); nothing was changed."""


@dataclass(frozen=True)
class MergeResult:
    into: Condition
    merged_name: str
    images_moved: int
    mappings_moved: int


def conditions_for_unmapped_labels(*, dataset: str, labels: Iterable[str]) -> dict[str, Condition]:
    """label -> a condition needing curation (created, or reused from another dataset's import).

    Each label also gets its mapping (dataset, label) so later runs file its rows the same way.
    One transaction: either every label has its condition and mapping, or none does.
    """
    created: dict[str, Condition] = {}
    with transaction.atomic():
        for label in sorted(set(labels)):
            condition = _pending_condition_for(label, dataset)
            ConditionLabelMapping.objects.get_or_create(dataset=dataset, label=label, defaults={"condition": condition})
            created[label] = condition
    return created


def condition_accept(*, condition: Condition) -> Condition:
    """A curator keeps a condition an import created: it joins the public vocabulary."""
    with transaction.atomic():
        condition = Condition.objects.select_for_update().get(pk=condition.pk)
        if not condition.needs_curation:
            raise ConditionCurationError(f"{condition.name} is already part of the public vocabulary")
        condition.needs_curation = False
        condition.save(update_fields=["needs_curation"])
    return condition


def condition_merge(*, condition: Condition, into: Condition) -> MergeResult:
    """Fold a condition needing curation into an existing one, atomically.

    Its images (and every other row that names it) move to `into`, its label mappings now
    point at `into` (so re-imports file those rows there), and it is deleted.
    """
    with transaction.atomic():
        locked = {c.pk: c for c in Condition.objects.select_for_update().filter(pk__in=[condition.pk, into.pk])}
        condition, into = locked.get(condition.pk), locked.get(into.pk)
        if condition is None or into is None:
            raise ConditionCurationError("the condition no longer exists (merged or deleted meanwhile)")
        if condition.pk == into.pk:
            raise ConditionCurationError("a condition cannot be merged into itself")
        if not condition.needs_curation:
            raise ConditionCurationError(f"{condition.name} is a curated condition; only ones an import created are merged")
        if into.needs_curation:
            raise ConditionCurationError(f"{into.name} needs curation itself; merge into a curated condition")
        images_moved = Image.objects.filter(condition=condition).update(condition=into)
        mappings_moved = ConditionLabelMapping.objects.filter(condition=condition).update(condition=into)
        _repoint_other_references(condition, into)
        # Conditions that listed the merged one as a look-alike list `into` instead.
        for referrer in Condition.objects.filter(lookalikes=condition).exclude(pk=into.pk):
            referrer.lookalikes.add(into)
        name = condition.name
        try:
            with transaction.atomic():
                condition.delete()
        except (IntegrityError, models.ProtectedError) as exc:
            raise ConditionCurationError(f"{name} is still referred to and cannot be removed: {exc}") from None
    return MergeResult(into=into, merged_name=name, images_moved=images_moved, mappings_moved=mappings_moved)


# --- internals ------------------------------------------------------------------------------


def _pending_condition_for(label: str, dataset: str) -> Condition:
    name = _name_from_label(label)
    slug = slugify(label)[:64].strip("-") or "unmapped-label"
    existing = Condition.objects.filter(Q(slug=slug) | Q(name__iexact=name)).first()
    if existing is not None and existing.needs_curation:
        return existing  # the same label from another dataset: one condition to curate, not two
    if existing is not None:
        # A curated condition of the same name that no mapping chose: never file rows there
        # silently. A separate condition, named after its dataset, waits for the curator.
        name = f"{name} ({dataset})"[:120]
        slug = slugify(f"{label} {dataset}")[:64].strip("-")
    condition, _ = Condition.objects.get_or_create(
        slug=slug,
        defaults={
            "name": name,
            "needs_curation": True,
            "category": Condition.Category.OTHER,
            "description": f"Created by an import of {dataset} for its label {label!r}, which no mapping covered. "
            "Accept it, or merge it into an existing condition, in the admin.",
        },
    )
    return condition


def _name_from_label(label: str) -> str:
    words = " ".join(label.replace("_", " ").split())
    return (words[:1].upper() + words[1:])[:120] or "Unmapped label"


def _repoint_other_references(condition: Condition, into: Condition) -> None:
    """Every other row that names the merged condition (study items, answers, samples) follows it."""
    for relation in Condition._meta.related_objects:
        if not relation.many_to_one or relation.related_model in (Image, ConditionLabelMapping):
            continue
        field = relation.field.name
        relation.related_model._base_manager.filter(**{field: condition}).update(**{field: into})
