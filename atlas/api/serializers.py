"""Serializers: input checking for query strings and uploads, and the shapes the API answers with.

They hold no business logic: views pass checked input to one service or selector.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from atlas.api.filters import ImageFilters, unknown_conditions, unknown_source
from atlas.licences import licence_get
from atlas.models import ExportJob, Image
from atlas.provenance import public_provenance
from atlas.services.ingestion import Box
from atlas.skin import FITZPATRICK_CHOICES

SKIN_TYPE_CHOICES = FITZPATRICK_CHOICES

# --- input ----------------------------------------------------------------------------------


def checked(serializer_class, data, **kwargs):
    """The serializer, validated: a ValidationError becomes the API's 400 `invalid` answer."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer


class Repeated(serializers.ListField):
    """A repeatable query parameter (?fitzpatrick=5&fitzpatrick=6); commas also separate values."""

    def get_value(self, dictionary):
        if not hasattr(dictionary, "getlist"):
            return super().get_value(dictionary)
        values = [part for value in dictionary.getlist(self.field_name) for part in str(value).split(",") if part != ""]
        return values if values else serializers.empty


class ImageFilterSerializer(serializers.Serializer):
    condition = Repeated(
        child=serializers.SlugField(max_length=64), required=False, max_length=50, help_text="Condition slug; repeat for any of several."
    )
    fitzpatrick = Repeated(
        child=serializers.ChoiceField(choices=SKIN_TYPE_CHOICES),
        required=False,
        max_length=6,
        help_text="Fitzpatrick skin type 1-6; repeat for any of several (fitzpatrick=5&fitzpatrick=6).",
    )
    origin = serializers.ChoiceField(choices=Image.Origin.choices, required=False, help_text="real or synthetic.")
    source = serializers.SlugField(max_length=64, required=False, help_text="Source slug.")
    licence = serializers.CharField(max_length=64, required=False, help_text="Licence identifier, e.g. CC-BY-4.0.")

    def validate_condition(self, value: list[str]) -> list[str]:
        unknown = unknown_conditions(tuple(value))
        if unknown:
            raise serializers.ValidationError(f"unknown condition: {', '.join(unknown)} (see /api/v1/conditions/)")
        return value

    def validate_source(self, value: str) -> str:
        if unknown_source(value):
            raise serializers.ValidationError(f"unknown source: {value}")
        return value

    def filters(self) -> ImageFilters:
        data = self.validated_data
        return ImageFilters(
            conditions=tuple(dict.fromkeys(data.get("condition", []))),
            skin_types=tuple(sorted({int(t) for t in data.get("fitzpatrick", [])})),
            origin=data.get("origin", ""),
            source=data.get("source", ""),
            licence=data.get("licence", ""),
        )


class SearchParamsSerializer(ImageFilterSerializer):
    k = serializers.IntegerField(min_value=1, max_value=settings.SEARCH_MAX_K, default=20, help_text="How many hits.")
    diversify = serializers.BooleanField(
        default=False, help_text="Round-robin over skin types: the condition shown on every tone."
    )


class TextSearchParamsSerializer(SearchParamsSerializer):
    q = serializers.CharField(
        max_length=settings.SEARCH_MAX_QUERY_CHARS, help_text="Free text; condition names and skin-tone words also filter."
    )


class ImageSearchSerializer(SearchParamsSerializer):
    image = serializers.FileField(help_text="A JPEG, PNG or WebP photo; searched in memory, never stored.")


class RegionSerializer(serializers.Serializer):
    x = serializers.IntegerField(min_value=0)
    y = serializers.IntegerField(min_value=0)
    width = serializers.IntegerField(min_value=1)
    height = serializers.IntegerField(min_value=1)
    label = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="JPEG, PNG or WebP. Metadata (EXIF, GPS) is stripped on ingestion.")
    condition = serializers.SlugField(max_length=64)
    source = serializers.SlugField(max_length=64, help_text="Slug of a source a curator created.")
    fitzpatrick_type = serializers.ChoiceField(choices=SKIN_TYPE_CHOICES, required=False, allow_null=True)
    fitzpatrick_label_source = serializers.ChoiceField(choices=Image.LabelSource.choices, required=False, allow_blank=True)
    monk_tone = serializers.IntegerField(min_value=1, max_value=10, required=False, allow_null=True)
    body_site = serializers.CharField(max_length=80, required=False, allow_blank=True)
    licence = serializers.CharField(max_length=64, required=False, allow_blank=True, help_text="Default: the source's.")
    attribution = serializers.CharField(max_length=500, required=False, allow_blank=True)
    case_id = serializers.CharField(max_length=120, required=False, allow_blank=True)
    external_id = serializers.CharField(max_length=200, required=False, allow_blank=True)
    regions = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=20_000,
        help_text='Lesion boxes as JSON: [{"x": 10, "y": 20, "width": 30, "height": 30, "label": ""}].',
    )

    def validate_regions(self, value: str) -> list[Box]:
        if not value.strip():
            return []
        try:
            raw = json.loads(value)
        except ValueError:
            raise serializers.ValidationError("not valid JSON") from None
        boxes = RegionSerializer(data=raw, many=True)
        if not isinstance(raw, list) or not boxes.is_valid():
            raise serializers.ValidationError(boxes.errors if isinstance(raw, list) else "a JSON list of boxes")
        return [Box(**box) for box in boxes.validated_data]


class ExportCreateSerializer(ImageFilterSerializer):
    commercial = serializers.BooleanField(default=False, help_text="The images will be used commercially.")
    derivatives = serializers.BooleanField(
        default=False, help_text="The images will be modified (cropped, annotated, remixed) and shared."
    )


# --- output ---------------------------------------------------------------------------------


class CountSerializer(serializers.Serializer):
    real = serializers.IntegerField()
    synthetic = serializers.IntegerField()


class SkinTypeCountSerializer(CountSerializer):
    fitzpatrick_type = serializers.IntegerField(allow_null=True, help_text="null: skin type unknown.")


class ConditionSerializer(serializers.Serializer):
    """A CoverageRow: the condition and its image counts per skin type."""

    slug = serializers.CharField(source="condition.slug")
    name = serializers.CharField(source="condition.name")
    synonyms = serializers.ListField(child=serializers.CharField(), source="condition.synonyms")
    category = serializers.CharField(source="condition.category")
    description = serializers.CharField(source="condition.description")
    skin_types = serializers.SerializerMethodField()
    total = serializers.SerializerMethodField()

    @extend_schema_field(SkinTypeCountSerializer(many=True))
    def get_skin_types(self, row) -> list[dict]:
        return [{"fitzpatrick_type": cell.skin_type, "real": cell.real, "synthetic": cell.synthetic} for cell in row.cells]

    @extend_schema_field(CountSerializer)
    def get_total(self, row) -> dict:
        return {"real": row.real, "synthetic": row.synthetic}


class CoverageRowSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    cells = serializers.DictField(child=CountSerializer(), help_text="Keyed by skin type: 1-6 and 'unknown'.")
    total = CountSerializer()
    pending = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Synthetic images waiting for review, by skin type (only types with any); not in the counts.",
    )


class CoverageSerializer(serializers.Serializer):
    skin_types = serializers.ListField(child=serializers.CharField())
    conditions = CoverageRowSerializer(many=True)
    column_totals = serializers.DictField(child=CountSerializer())
    total = CountSerializer()
    pending = serializers.IntegerField(help_text="Synthetic images waiting for review (public counts leave them out).")


class LicenceSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    url = serializers.URLField()
    redistribution = serializers.BooleanField()
    commercial = serializers.BooleanField()
    derivatives = serializers.BooleanField()
    attribution = serializers.BooleanField()
    share_alike = serializers.BooleanField()
    summary = serializers.CharField()


class _BriefConditionSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class _BriefSourceSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    url = serializers.CharField()


def _absolute(request, url: str) -> str:
    return request.build_absolute_uri(url) if request is not None else url


_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


class _Links:
    """Absolute URLs for a page of images: reverse() and the host worked out once per request
    instead of per image (they were a fifth of the images list's time)."""

    def __init__(self, request) -> None:
        self.root = request.build_absolute_uri("/")[:-1] if request is not None else ""
        self._api = self.root + reverse("api:image-detail", args=[_PLACEHOLDER])
        self._page = self.root + reverse("atlas:image_detail", args=[_PLACEHOLDER])

    def api(self, image: Image) -> str:
        return self._api.replace(_PLACEHOLDER, str(image.public_id))

    def page(self, image: Image) -> str:
        return self._page.replace(_PLACEHOLDER, str(image.public_id))

    def absolute(self, url: str) -> str:
        # Object stores (S3) hand out absolute, signed URLs already.
        return url if url.startswith(("http://", "https://")) else self.root + url


class ImageSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="This image in the API.")
    page = serializers.SerializerMethodField(help_text="This image's page on the website.")
    condition = _BriefConditionSerializer()
    source = _BriefSourceSerializer()
    file = serializers.SerializerMethodField(help_text="The full image (absolute URL).")
    thumbnail = serializers.SerializerMethodField(help_text="A JPEG thumbnail (absolute URL).")
    licence_url = serializers.SerializerMethodField(help_text="The licence's legal text, when Atlas knows it.")
    is_synthetic = serializers.BooleanField(help_text="Generated by the GAN, not a photograph.")
    regions = RegionSerializer(many=True, help_text="Lesion boxes in the full image's pixel coordinates.")
    provenance = serializers.SerializerMethodField(
        help_text="For synthetic images: model, checkpoint, what it was trained on (training_data), map, seed, job, "
        "gate results and review (state, reviewer, time, reason). Never a server path."
    )
    review_state = serializers.ChoiceField(
        choices=Image.ReviewState.choices,
        help_text="Synthetic images: approved (public), or pending (seen by staff only); real images: not_required.",
    )

    class Meta:
        model = Image
        fields = [
            "public_id", "url", "page", "condition", "fitzpatrick_type", "fitzpatrick_label_source", "monk_tone",
            "body_site", "origin", "is_synthetic", "review_state", "source", "licence", "licence_url", "attribution",
            "width", "height", "file", "thumbnail", "regions", "provenance", "created_at",
        ]  # fmt: skip

    @property
    def links(self) -> _Links:
        # The context dict is shared by every image of a list, so this runs once per request.
        if "_links" not in self.context:
            self.context["_links"] = _Links(self.context.get("request"))
        return self.context["_links"]

    def get_url(self, image: Image) -> str:
        return self.links.api(image)

    def get_page(self, image: Image) -> str:
        return self.links.page(image)

    def get_file(self, image: Image) -> str:
        return self.links.absolute(image.file_url)

    def get_thumbnail(self, image: Image) -> str:
        return self.links.absolute(image.thumbnail_url)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_licence_url(self, image: Image) -> str | None:
        licence = licence_get(image.licence)
        return licence.url if licence else None

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_provenance(self, image: Image) -> dict | None:
        return public_provenance(image.provenance) if image.is_synthetic else None


class UploadResultSerializer(serializers.Serializer):
    public_id = serializers.UUIDField(
        allow_null=True, help_text="The stored or existing image; null for a duplicate of an image you may not see."
    )
    duplicate = serializers.BooleanField(help_text="The pixels were already in the atlas: nothing was stored.")
    labels_applied = serializers.BooleanField(
        help_text="false for every duplicate: the labels sent with it (condition, skin type, regions, ...) were not applied."
    )
    message = serializers.CharField(help_text="What happened, for people.")
    image = ImageSerializer(
        allow_null=True,
        help_text="The stored (or existing) image; null for a duplicate of an image you may not see (hidden).",
    )


class SearchHitSerializer(serializers.Serializer):
    score = serializers.FloatField(help_text="Cosine similarity between the query and the image.")
    boosted = serializers.BooleanField(help_text="Ranked first for matching the skin tone named in the query.")
    image = ImageSerializer()


class _InterpretedSerializer(serializers.Serializer):
    conditions = serializers.ListField(child=serializers.CharField())
    skin_types = serializers.ListField(child=serializers.IntegerField())
    terms = serializers.ListField(child=serializers.CharField())


class _SearchFiltersSerializer(serializers.Serializer):
    conditions = serializers.ListField(child=serializers.CharField())
    skin_types = serializers.ListField(child=serializers.IntegerField())
    origin = serializers.CharField(allow_blank=True)
    source = serializers.CharField(allow_blank=True)
    licence = serializers.CharField(allow_blank=True)


class SearchResultSerializer(serializers.Serializer):
    hits = SearchHitSerializer(many=True)
    interpreted = _InterpretedSerializer(
        source="interpretation", help_text="Condition names and skin-tone words found in the query text."
    )
    filters = _SearchFiltersSerializer(help_text="The filters applied (yours, plus conditions named in the text).")
    model_version = serializers.CharField()
    index_version = serializers.CharField()
    fallback = serializers.CharField(allow_blank=True, help_text="Why exact search answered instead of the index.")
    seconds = serializers.FloatField()


class ExcludedSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    licence = serializers.CharField(allow_blank=True)
    reason = serializers.CharField()


class ExportJobSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    download = serializers.SerializerMethodField(help_text="The zip, once the job has succeeded.")
    excluded = ExcludedSerializer(many=True, help_text="Images left out because their licence forbids this use.")
    filters = serializers.DictField(help_text="The image filters of the export.")

    class Meta:
        model = ExportJob
        fields = [
            "public_id", "url", "status", "filters", "commercial", "derivatives", "image_count", "excluded",
            "size_bytes", "download", "error", "created_at", "started_at", "finished_at",
        ]  # fmt: skip

    def get_url(self, job: ExportJob) -> str:
        return _absolute(self.context.get("request"), reverse("api:export-detail", args=[job.public_id]))

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download(self, job: ExportJob) -> str | None:
        if job.status != ExportJob.Status.SUCCEEDED:
            return None
        return _absolute(self.context.get("request"), reverse("api:export-download", args=[job.public_id]))


class ErrorDetailSerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status, repeated.")
    code = serializers.CharField(help_text="Stable, for programs: e.g. invalid, not_found, throttled, not_an_image.")
    message = serializers.CharField(help_text="For people.")
    details = serializers.JSONField(allow_null=True, help_text="Field errors (code invalid), retry_after (throttled).")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
