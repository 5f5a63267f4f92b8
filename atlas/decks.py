"""Deck audit for teaching platforms: how well does a deck of cards cover skin tones, per
condition, and which public atlas images could be swapped in where it does not?

A deck is given as atlas image public ids and/or as cards "condition x count (x skin type)"
for decks of the platform's own pictures. Only public images count (THE visibility rule,
`public_q`): an id that is unknown, hidden, pending review or rejected is reported as
"not_found", the same for all of them, so the audit never reveals that a private image
exists. A read: nothing is stored. The API (atlas/api/decks.py) calls `deck_audit`.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from dataclasses import dataclass, field

from atlas.models import Condition, Image
from atlas.skin import FITZPATRICK_TYPES

MAX_DECK_IMAGES = 500  # image ids per audit
MAX_DECK_CARDS = 200  # card lines per audit
MAX_CARD_COUNT = 1000  # cards on one line
MAX_SWAPS = 20  # suggestions per condition, at most
DARK_TYPES = (5, 6)  # Fitzpatrick V-VI: the types teaching material most often lacks
DEFAULT_DARK_SHARE = 1 / 3  # two types of six: what an even spread over I-VI gives
IGNORED_REASONS = [("not_found", "No public image with this id"), ("duplicate", "Listed before in the same deck")]
_CANDIDATES = 200  # candidate images read per condition (real first): far more than any swap list


class DeckError(ValueError):
    """An audit that is refused: empty or oversized deck. `code` is stable, the message is for people."""

    def __init__(self, code: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True)
class Card:
    condition: str  # slug
    count: int
    skin_type: int | None = None  # None: the platform does not know the card's skin type


@dataclass
class Swap:
    replace: uuid.UUID | None  # the deck image to take out (image decks), else None
    replace_skin_type: int | None  # its skin type (or the card line's)
    image: Image  # a public image of the same condition on type V or VI


@dataclass
class ConditionAudit:
    condition: Condition
    by_skin_type: Counter  # skin type (None = unknown) -> cards
    synthetic: int  # deck images that are synthetic (image decks only)
    target: float
    swap_limit: int = MAX_SWAPS
    swaps: list[Swap] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(self.by_skin_type.values())

    @property
    def dark(self) -> int:
        return sum(self.by_skin_type[t] for t in DARK_TYPES)

    @property
    def dark_share(self) -> float:
        return self.dark / self.size if self.size else 0.0

    @property
    def missing(self) -> int:
        """Cards of types V-VI this condition lacks to reach the target share (the 1e-9 keeps
        a third of 3 from rounding up to 2)."""
        return max(0, math.ceil(self.target * self.size - 1e-9) - self.dark)

    @property
    def under_covered(self) -> bool:
        return self.missing > 0

    @property
    def shortfall(self) -> int:
        """Swaps needed that the atlas has no public image for (yet)."""
        return max(0, min(self.missing, self.swap_limit) - len(self.swaps))


@dataclass
class Ignored:
    public_id: uuid.UUID
    reason: str  # "not_found" (unknown or not public: never told apart) or "duplicate"


@dataclass
class DeckAudit:
    conditions: list[ConditionAudit]
    ignored: list[Ignored]
    target: float

    @property
    def by_skin_type(self) -> Counter:
        total: Counter = Counter()
        for row in self.conditions:
            total.update(row.by_skin_type)
        return total

    @property
    def size(self) -> int:
        return sum(row.size for row in self.conditions)

    @property
    def dark_share(self) -> float:
        return sum(row.dark for row in self.conditions) / self.size if self.size else 0.0


def deck_audit(
    *, image_ids: list[uuid.UUID] = (), cards: list[Card] = (), dark_share_target: float = DEFAULT_DARK_SHARE,
    max_swaps: int = 5,
) -> DeckAudit:
    """Coverage by skin type per condition, the share of types V-VI, and for each condition
    below `dark_share_target` up to `max_swaps` suggested swaps: public images of the same
    condition on types V-VI that are not in the deck, real before synthetic, spread over V
    and VI, each replacing a deck card of the most represented lighter type."""
    image_ids, cards = list(image_ids), list(cards)
    if not image_ids and not cards:
        raise DeckError("empty_deck", "The deck is empty: send `images` (public ids) and/or `cards` (condition, count).")
    if len(image_ids) > MAX_DECK_IMAGES:
        raise DeckError("deck_too_large", f"A deck audit takes at most {MAX_DECK_IMAGES} image ids; this deck has "
                        f"{len(image_ids)}. Audit it in parts.", {"limit": MAX_DECK_IMAGES, "images": len(image_ids)})
    if len(cards) > MAX_DECK_CARDS:
        raise DeckError("deck_too_large", f"A deck audit takes at most {MAX_DECK_CARDS} card lines; this deck has "
                        f"{len(cards)}. Audit it in parts.", {"limit": MAX_DECK_CARDS, "cards": len(cards)})
    if not 0 <= dark_share_target <= 1 or not 1 <= max_swaps <= MAX_SWAPS:
        raise DeckError("invalid", f"dark_share_target must be 0-1 and max_swaps 1-{MAX_SWAPS}")
    if any(not 1 <= card.count <= MAX_CARD_COUNT or card.skin_type not in (None, *FITZPATRICK_TYPES) for card in cards):
        raise DeckError("invalid", f"each card line needs a count of 1-{MAX_CARD_COUNT} and a skin type of 1-6 (or none)")
    images, ignored = _deck_images(image_ids)
    slugs = {card.condition for card in cards}
    known = {c.slug: c for c in Condition.objects.public().filter(slug__in=slugs)}
    if slugs - set(known):
        raise DeckError("unknown_condition", f"unknown condition {', '.join(sorted(slugs - set(known)))} (see /api/v1/conditions/)")
    rows: dict[int, ConditionAudit] = {}

    def row(condition: Condition) -> ConditionAudit:
        return rows.setdefault(condition.id, ConditionAudit(condition, Counter(), 0, dark_share_target, swap_limit=max_swaps))

    for image in images:
        entry = row(image.condition)
        entry.by_skin_type[image.fitzpatrick_type] += 1
        entry.synthetic += image.is_synthetic
    for card in cards:
        row(known[card.condition]).by_skin_type[card.skin_type] += card.count
    in_deck = {image.id for image in images}
    for entry in rows.values():
        if entry.under_covered:
            entry.swaps = _swaps(entry, [i for i in images if i.condition_id == entry.condition.id], in_deck,
                                 min(entry.missing, max_swaps))
    return DeckAudit(sorted(rows.values(), key=lambda r: r.condition.slug), ignored, dark_share_target)


def _deck_images(image_ids: list[uuid.UUID]) -> tuple[list[Image], list[Ignored]]:
    found = {image.public_id: image for image in
             Image.objects.public().filter(public_id__in=set(image_ids)).select_related("condition")}
    images, ignored, seen = [], [], set()
    for public_id in image_ids:
        if public_id in seen:
            ignored.append(Ignored(public_id, "duplicate"))
        elif public_id not in found:
            ignored.append(Ignored(public_id, "not_found"))
        else:
            images.append(found[public_id])
        seen.add(public_id)
    return images, ignored


def _swaps(entry: ConditionAudit, deck_images: list[Image], in_deck: set[int], wanted: int) -> list[Swap]:
    candidates = list(
        Image.objects.public().filter(condition=entry.condition, fitzpatrick_type__in=DARK_TYPES).exclude(id__in=in_deck)
        .select_related("source").order_by("origin", "id")[:_CANDIDATES]  # "real" sorts before "synthetic"
    )
    # What the deck can give up: cards of the lighter types (and unknown), most represented first.
    light = Counter({t: n for t, n in entry.by_skin_type.items() if t not in DARK_TYPES and n})
    planned = Counter({t: entry.by_skin_type[t] for t in DARK_TYPES})
    out_ids = {t: [i.public_id for i in deck_images if i.fitzpatrick_type == t] for t in light}
    swaps: list[Swap] = []
    while len(swaps) < wanted and candidates and light:
        pick = min(candidates, key=lambda i: (i.is_synthetic, planned[i.fitzpatrick_type], i.id))
        candidates.remove(pick)
        give = max(light, key=lambda t: (light[t], -(t or 7)))  # the largest group; the lightest on a tie, unknown last
        light[give] -= 1
        light += Counter()  # drop emptied types
        planned[pick.fitzpatrick_type] += 1
        replace = out_ids[give].pop(0) if out_ids.get(give) else None
        swaps.append(Swap(replace, give, pick))
    return swaps
