"""POST /api/v1/decks/audit/: a teaching platform asks how well a deck covers skin tones per
condition, and what it could swap in. Thin: the serializers check the input's shape, one
selector (atlas.decks.deck_audit) does the audit, its DeckError becomes a 400 with its code.

Open to everyone, like search: it reads public data only and stores nothing.
"""

from __future__ import annotations

import re

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import permissions, serializers
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from atlas.api.errors import ApiError
from atlas.api.schema import AtlasAutoSchema
from atlas.api.serializers import (
    ConditionSlugField,
    QueryParamsSerializer,
    _BriefConditionSerializer,
    _BriefSourceSerializer,
    _Links,
    checked,
)
from atlas.decks import (
    DEFAULT_DARK_SHARE,
    IGNORED_REASONS,
    MAX_CARD_COUNT,
    MAX_DECK_CARDS,
    MAX_DECK_IMAGES,
    MAX_SWAPS,
    Card,
    ConditionAudit,
    DeckAudit,
    DeckError,
    deck_audit,
)
from atlas.licences import licence_get
from atlas.models import Image
from atlas.skin import FITZPATRICK_CHOICES, FITZPATRICK_TYPES, roman

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# --- input ----------------------------------------------------------------------------------


class PublicIdField(serializers.UUIDField):
    """An image's public id, written as the API writes it (a JSON string, 8-4-4-4-12 hex digits)."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not _UUID.match(data):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class DeckCardSerializer(QueryParamsSerializer):
    """One line of a deck of the platform's own pictures: this many cards of a condition, on
    one skin type (or of unknown type)."""

    condition = ConditionSlugField(help_text="The condition's slug (see /api/v1/conditions/).")
    count = serializers.IntegerField(min_value=1, max_value=MAX_CARD_COUNT, help_text="Cards of this condition (and skin type).")
    fitzpatrick_type = serializers.ChoiceField(
        choices=FITZPATRICK_CHOICES, required=False,
        help_text="The cards' Fitzpatrick type (1-6); leave it out when the platform does not know it.",
    )


class DeckSerializer(QueryParamsSerializer):
    """A deck to audit: atlas image ids, card lines, or both (counted together). JSON types are
    strict (a count is a number, an id a string)."""

    images = serializers.ListField(
        child=PublicIdField(), required=False, allow_empty=False,
        help_text=f"Public ids of atlas images in the deck (1-{MAX_DECK_IMAGES}). Unknown or non-public ids are "
                  "reported in `ignored`, never counted.",
    )
    cards = DeckCardSerializer(
        many=True, required=False, allow_empty=False,
        help_text=f"The deck as cards of the platform's own (1-{MAX_DECK_CARDS} lines): condition, count, skin type.",
    )
    dark_share_target = serializers.FloatField(
        required=False, default=DEFAULT_DARK_SHARE, min_value=0, max_value=1,
        help_text="A condition is under-covered when less than this share of its cards is on types V-VI (default 1/3).",
    )
    max_swaps = serializers.IntegerField(
        required=False, default=5, min_value=1, max_value=MAX_SWAPS, help_text="Swaps suggested per condition, at most."
    )


class DeckSchemaExtension(OpenApiSerializerExtension):
    """What the serializer cannot say: at least one of `images` and `cards`, neither empty, and
    the deck limits (the selector enforces them, with their own error codes)."""

    target_class = DeckSerializer

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["properties"]["images"].update(minItems=1, maxItems=MAX_DECK_IMAGES)
        schema["properties"]["cards"].update(minItems=1, maxItems=MAX_DECK_CARDS)
        schema["anyOf"] = [{"required": ["images"]}, {"required": ["cards"]}]
        return schema


class DeckAutoSchema(AtlasAutoSchema):
    """Every field of the deck is optional on its own, but a body is not: say it is required."""

    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        if body:
            body["required"] = True
        return body


# --- output ---------------------------------------------------------------------------------


class SkinTypeCardsSerializer(serializers.Serializer):
    fitzpatrick_type = serializers.IntegerField(allow_null=True, help_text="null: skin type unknown.")
    label = serializers.CharField(help_text="I-VI or 'unknown'.")
    count = serializers.IntegerField()


class SwapLicenceSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The image's licence identifier (SPDX style).")
    name = serializers.CharField(allow_null=True, help_text="null when Atlas does not know this licence.")
    url = serializers.CharField(allow_null=True, help_text="The licence's legal text.")


class SwapImageSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    url = serializers.CharField(help_text="The image in the API (full metadata, files).")
    page = serializers.CharField(help_text="The image's page on the website.")
    thumbnail = serializers.CharField()
    fitzpatrick_type = serializers.IntegerField()
    is_synthetic = serializers.BooleanField(help_text="Generated by the GAN (approved by a reviewer), not a photograph.")
    licence = SwapLicenceSerializer()
    attribution = serializers.CharField(allow_blank=True)
    source = _BriefSourceSerializer()


class SwapSerializer(serializers.Serializer):
    replace = serializers.UUIDField(allow_null=True, help_text="The deck image to take out; null for a card line.")
    replace_fitzpatrick_type = serializers.IntegerField(allow_null=True, help_text="Its skin type (null: unknown).")
    image = SwapImageSerializer(help_text="What to put in: the same condition on type V or VI, real first.")


class ConditionAuditSerializer(serializers.Serializer):
    condition = _BriefConditionSerializer()
    size = serializers.IntegerField(help_text="Cards of this condition in the deck.")
    synthetic = serializers.IntegerField(help_text="Of them, atlas images that are synthetic.")
    by_skin_type = SkinTypeCardsSerializer(many=True, help_text="Cards per Fitzpatrick type I-VI, then unknown.")
    dark_share = serializers.FloatField(help_text="Share of the condition's cards on types V-VI.")
    under_covered = serializers.BooleanField()
    missing = serializers.IntegerField(help_text="Cards on types V-VI needed to reach the target share.")
    swaps = SwapSerializer(many=True)
    shortfall = serializers.IntegerField(help_text="Swaps needed (up to max_swaps) that the atlas has no public image for yet.")


class IgnoredSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    reason = serializers.ChoiceField(
        choices=IGNORED_REASONS,
        help_text="not_found: no public image with this id (unknown, hidden or not approved: never told apart); "
                  "duplicate: listed before.",
    )


class DeckAuditSerializer(serializers.Serializer):
    """The deck's coverage by skin type, overall and per condition, with swaps for the
    conditions below the target share of types V-VI."""

    size = serializers.IntegerField(help_text="Cards counted (images found plus card counts).")
    by_skin_type = SkinTypeCardsSerializer(many=True)
    dark_share = serializers.FloatField(help_text="Share of the deck on Fitzpatrick types V-VI.")
    dark_share_target = serializers.FloatField()
    under_covered = serializers.IntegerField(help_text="Conditions below the target share.")
    conditions = ConditionAuditSerializer(many=True)
    ignored = IgnoredSerializer(many=True, help_text="Image ids not counted, each with its reason.")


def _skin_rows(counts) -> list[dict]:
    return [{"fitzpatrick_type": t, "label": roman(t), "count": counts.get(t, 0)} for t in (*FITZPATRICK_TYPES, None)]


def _swap_image(image: Image, links: _Links) -> dict:
    licence = licence_get(image.licence)
    return {
        "public_id": image.public_id, "url": links.api(image), "page": links.page(image),
        "thumbnail": links.absolute(image.thumbnail_url), "fitzpatrick_type": image.fitzpatrick_type,
        "is_synthetic": image.is_synthetic, "attribution": image.attribution, "source": image.source,
        "licence": {"id": image.licence, "name": licence.name if licence else None, "url": licence.url if licence else None},
    }  # fmt: skip


def _condition_data(row: ConditionAudit, links: _Links) -> dict:
    return {
        "condition": row.condition, "size": row.size, "synthetic": row.synthetic, "by_skin_type": _skin_rows(row.by_skin_type),
        "dark_share": round(row.dark_share, 4), "under_covered": row.under_covered, "missing": row.missing,
        "shortfall": row.shortfall,
        "swaps": [{"replace": s.replace, "replace_fitzpatrick_type": s.replace_skin_type, "image": _swap_image(s.image, links)}
                  for s in row.swaps],
    }  # fmt: skip


def _audit_data(audit: DeckAudit, request: Request) -> dict:
    links = _Links(request)
    return {
        "size": audit.size, "by_skin_type": _skin_rows(audit.by_skin_type), "dark_share": round(audit.dark_share, 4),
        "dark_share_target": audit.target, "under_covered": sum(row.under_covered for row in audit.conditions),
        "conditions": [_condition_data(row, links) for row in audit.conditions],
        "ignored": [{"public_id": i.public_id, "reason": i.reason} for i in audit.ignored],
    }  # fmt: skip


_EXAMPLE = {"images": ["3f2b6c1e-7a4d-4f0e-9c1a-2b5d8e9f0a11"], "cards": [{"condition": "psoriasis", "count": 8, "fitzpatrick_type": 2}]}


class DeckAuditView(APIView):
    permission_classes = [permissions.AllowAny]  # a read of public data, like search by photo
    parser_classes = [JSONParser]  # nested card lines travel as JSON only
    schema = DeckAutoSchema()

    @extend_schema(
        summary="Audit a teaching deck: coverage by skin type per condition, share of types V-VI, suggested swaps",
        request=DeckSerializer,
        responses={200: DeckAuditSerializer},
        examples=[OpenApiExample("Images and cards", value=_EXAMPLE, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        data = checked(DeckSerializer, request.data).validated_data
        cards = [Card(c["condition"], c["count"], c.get("fitzpatrick_type")) for c in data.get("cards", [])]
        try:
            audit = deck_audit(image_ids=data.get("images", []), cards=cards, dark_share_target=data["dark_share_target"],
                               max_swaps=data["max_swaps"])
        except DeckError as exc:
            raise ApiError(exc.code, exc.message, details=exc.details) from None
        return Response(DeckAuditSerializer(_audit_data(audit, request)).data)

