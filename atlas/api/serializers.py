"""Serializers: input checking for query strings and uploads, and the shapes the API answers with.

They hold no business logic: views pass checked input to one service or selector.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from atlas.condition_content import EDUCATIONAL_NOTE
from atlas.filters import SKIN_TYPE_VALUES, FilterError, ImageFilters, ImageFilterSet, filters_parse
from atlas.licences import licence_get
from atlas.models import ExportJob, Image
from atlas.provenance import public_provenance
from atlas.services.ingestion import Box
from search.query import _CONTROL as _SEARCH_CONTROL
from atlas.skin import FITZPATRICK_CHOICES

SKIN_TYPE_CHOICES = FITZPATRICK_CHOICES

# --- input ----------------------------------------------------------------------------------


def checked(serializer_class, data, **kwargs):
    """The serializer, validated: a ValidationError becomes the API's 400 `invalid` answer."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer


class Repeated(serializers.ListField):
    """A repeatable query parameter (?fitzpatrick=5&fitzpatrick=6); commas also separate values.

    An empty value (`condition=`, `condition=a,,b`) is refused, like every empty parameter."""

    def get_value(self, dictionary):
        if not hasattr(dictionary, "getlist"):
            return super().get_value(dictionary)
        values = [part for value in dictionary.getlist(self.field_name) for part in str(value).split(",")]
        return values if values else serializers.empty


def _described(name: str) -> str:
    return ImageFilterSet.base_filters[name].extra["help_text"]


class ConditionSlugField(serializers.SlugField):
    """A condition's slug. The schema lists the conditions that exist when it is generated
    (atlas.api.schema), since an unknown one is refused (400)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(max_length=64, **kwargs)


class SourceSlugField(serializers.SlugField):
    """A source's slug; the schema lists the sources that exist, as for conditions."""

    def __init__(self, **kwargs) -> None:
        super().__init__(max_length=64, **kwargs)


class StrictBooleanField(serializers.BooleanField):
    """true or false (JSON booleans, or those words in a query string or form), as the schema's
    `boolean` says; DRF's own also takes 1/0, yes/no, on/off."""

    def to_internal_value(self, data) -> bool:
        if isinstance(data, bool):
            return data
        if data in ("true", "True"):
            return True
        if data in ("false", "False"):
            return False
        self.fail("invalid", input=data)  # 0 and 1 too: `0 == False` must not sneak through a set


class QueryParamsSerializer(serializers.Serializer):
    """Query strings and form bodies: a parameter given with an empty value (`source=`) is
    refused instead of being read as absent, so the API does what the schema says (a minimum
    length, an enum, an integer): leave a parameter out to not use it."""

    def to_internal_value(self, data):
        if hasattr(data, "getlist"):
            empty = [
                name for name, field in self.fields.items()
                if name in data and not getattr(field, "allow_blank", False)
                and any(str(value).strip() == "" for value in data.getlist(name))
            ]  # fmt: skip
            if empty:
                raise serializers.ValidationError({name: ["This parameter is empty; leave it out instead."] for name in empty})
        elif isinstance(data, dict):
            # JSON carries types: 5 is not "5" and "0" is not 0, as the schema says (DRF converts).
            wrong = [name for name, field in self.fields.items() if name in data and not _json_type_fits(field, data[name])]
            if wrong:
                raise serializers.ValidationError({name: ["Wrong JSON type; see the schema."] for name in wrong})
        return super().to_internal_value(data)


def _json_type_fits(field: serializers.Field, value) -> bool:
    if value is None:
        return True  # allow_null decides
    if isinstance(field, serializers.ListField):
        return isinstance(value, list) and all(_json_type_fits(field.child, item) for item in value)
    if isinstance(field, serializers.BooleanField):
        return isinstance(value, bool)
    if isinstance(field, serializers.ChoiceField):
        # Skin types are written "5" in query strings and 5 in JSON (docs/api.md): both fit.
        fits_int = isinstance(value, int) and not isinstance(value, bool) and str(value) in field.choice_strings_to_values
        return fits_int or any(type(value) is type(choice) for choice in field.choices)
    if isinstance(field, serializers.IntegerField):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(field, serializers.FloatField):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(field, serializers.CharField):
        return isinstance(value, str)
    return True


class ImageFilterSerializer(QueryParamsSerializer):
    """The image filters, as the schema shows them; atlas/filters.py (the one FilterSet) checks and applies them."""

    # Typed as the FilterSet accepts them, so the schema tells the truth (enums of the conditions
    # and sources that exist, the skin-type values); the FilterSet still decides and applies.
    condition = Repeated(child=ConditionSlugField(), required=False, max_length=50, help_text=_described("condition"))
    fitzpatrick = Repeated(
        child=serializers.ChoiceField(choices=SKIN_TYPE_VALUES), required=False, max_length=7, help_text=_described("fitzpatrick")
    )
    origin = serializers.ChoiceField(choices=Image.Origin.choices, required=False, help_text=_described("origin"))
    source = SourceSlugField(required=False, help_text=_described("source"))
    licence = serializers.CharField(max_length=64, required=False, help_text=_described("licence"))

    def to_internal_value(self, data):
        # The FilterSet's errors and the fields' own, together: every bad field is named.
        filter_errors: dict = {}
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)  # DRF's own answer: "expected a dictionary"
        try:
            self._filters = filters_parse(data)
        except FilterError as exc:
            filter_errors = exc.errors
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            raise serializers.ValidationError({**filter_errors, **details}) from None
        if filter_errors:
            raise serializers.ValidationError(filter_errors)
        return value

    def filters(self) -> ImageFilters:
        return self._filters


class SearchParamsSerializer(ImageFilterSerializer):
    k = serializers.IntegerField(min_value=1, max_value=settings.SEARCH_MAX_K, default=20, help_text="How many hits.")
    diversify = StrictBooleanField(
        default=False, help_text="Round-robin over skin types: the condition shown on every tone."
    )


# What search refuses in a query (search.query: control characters; nothing but spaces) as a
# pattern, derived from its own expression so the schema cannot drift from it.
_CONTROL_CLASS = _SEARCH_CONTROL.pattern[1:-1]
SEARCH_TEXT_PATTERN = rf"^[^{_CONTROL_CLASS}]*[^\s{_CONTROL_CLASS}][^{_CONTROL_CLASS}]*$"


@extend_schema_field({"type": "string", "maxLength": settings.SEARCH_MAX_QUERY_CHARS, "pattern": SEARCH_TEXT_PATTERN})
class SearchTextField(serializers.CharField):
    """Free text; the schema carries the pattern of what search accepts."""


class TextSearchParamsSerializer(SearchParamsSerializer):
    q = SearchTextField(
        max_length=settings.SEARCH_MAX_QUERY_CHARS, help_text="Free text; condition names, everyday phrases and skin-tone words rank those images first."
    )


class ImageSearchSerializer(SearchParamsSerializer):
    image = serializers.FileField(help_text="A JPEG, PNG or WebP photo; searched in memory, never stored.")


class RegionSerializer(serializers.Serializer):
    x = serializers.IntegerField(min_value=0)
    y = serializers.IntegerField(min_value=0)
    width = serializers.IntegerField(min_value=1)
    height = serializers.IntegerField(min_value=1)
    label = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")


class UploadSerializer(QueryParamsSerializer):
    file = serializers.FileField(help_text="JPEG, PNG or WebP. Metadata (EXIF, GPS) is stripped on ingestion.")
    condition = ConditionSlugField()
    source = SourceSlugField(help_text="Slug of a source a curator created.")
    # Multipart has no null: leave these out when unknown (an empty value is refused).
    fitzpatrick_type = serializers.ChoiceField(choices=SKIN_TYPE_CHOICES, required=False, help_text="Leave out: unknown.")
    fitzpatrick_label_source = serializers.ChoiceField(choices=Image.LabelSource.choices, required=False, allow_blank=True)
    monk_tone = serializers.IntegerField(min_value=1, max_value=10, required=False, help_text="Leave out: unknown.")
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
    commercial = StrictBooleanField(default=False, help_text="The images will be used commercially.")
    derivatives = StrictBooleanField(
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
    summary = serializers.CharField(source="condition.summary", help_text="One sentence: the condition's short text.")
    description = serializers.CharField(source="condition.description", help_text="What it is.")
    skin_types = serializers.SerializerMethodField()
    total = serializers.SerializerMethodField()

    @extend_schema_field(SkinTypeCountSerializer(many=True))
    def get_skin_types(self, row) -> list[dict]:
        return [{"fitzpatrick_type": cell.skin_type, "real": cell.real, "synthetic": cell.synthetic} for cell in row.cells]

    @extend_schema_field(CountSerializer)
    def get_total(self, row) -> dict:
        return {"real": row.real, "synthetic": row.synthetic}


class FurtherReadingSerializer(serializers.Serializer):
    title = serializers.CharField()
    url = serializers.URLField()


class ConditionDetailSerializer(ConditionSerializer):
    """One condition with its teaching text (educational, not diagnostic) and its counts."""

    appearance_light = serializers.CharField(source="condition.appearance_light", help_text="How it looks on lighter skin (types I-III).")
    appearance_dark = serializers.CharField(source="condition.appearance_dark", help_text="How it looks on darker skin (types IV-VI).")
    lookalikes = serializers.SerializerMethodField(help_text="Slugs of the conditions it is commonly confused with.")
    see_clinician = serializers.CharField(source="condition.see_clinician", help_text="When to see a clinician.")
    further_reading = FurtherReadingSerializer(many=True, source="condition.further_reading", help_text="Public references.")
    educational_note = serializers.SerializerMethodField(help_text="The text is educational, not diagnostic.")

    def get_lookalikes(self, row) -> list[str]:
        return list(row.condition.lookalikes.public().exclude(pk=row.condition.pk).order_by("slug").values_list("slug", flat=True))

    def get_educational_note(self, row) -> str:
        return EDUCATIONAL_NOTE


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
    boosted = serializers.BooleanField(help_text="Ranked first: it shows a condition or skin type the query's words name.")
    nearest_type = serializers.BooleanField(
        help_text="Shown for a skin type near the one asked for, which has no images of the condition (see skin_type_gap)."
    )
    image = ImageSerializer()


class _InterpretedSerializer(serializers.Serializer):
    conditions = serializers.ListField(child=serializers.CharField(), help_text="Conditions the words name: ranked first, not filtered.")
    skin_types = serializers.ListField(child=serializers.IntegerField(), help_text="Skin types the words name: ranked first.")
    terms = serializers.ListField(child=serializers.CharField())
    suggestion = serializers.CharField(allow_blank=True, help_text="\"Did you mean\": the query with misspelt condition names corrected.")
    only_skin_type = serializers.BooleanField(help_text="The words name a skin type and nothing else.")


class _SearchFiltersSerializer(serializers.Serializer):
    conditions = serializers.ListField(child=serializers.CharField())
    skin_types = serializers.ListField(child=serializers.IntegerField(allow_null=True))
    origin = serializers.CharField(allow_blank=True)
    source = serializers.CharField(allow_blank=True)
    licence = serializers.CharField(allow_blank=True)


class _SkinTypeGapSerializer(serializers.Serializer):
    conditions = serializers.ListField(child=serializers.CharField())
    requested = serializers.ListField(child=serializers.IntegerField(), help_text="Skin types asked for: no image of the conditions.")
    nearest = serializers.ListField(child=serializers.IntegerField(), help_text="The closest skin types that have images, shown instead.")


class SearchResultSerializer(serializers.Serializer):
    hits = SearchHitSerializer(many=True, help_text="The answer; empty when nothing matched confidently (see closest).")
    confident = serializers.BooleanField(help_text="False: the best match is below the relevance floor (\"no confident match\").")
    floor = serializers.FloatField(allow_null=True, help_text="The relevance floor this query was held to (null: none applies).")
    closest = SearchHitSerializer(many=True, help_text="Without a confident match: the closest images, probably not relevant.")
    skin_type_gap = _SkinTypeGapSerializer(allow_null=True, help_text="Set when a skin type asked for has no images of the condition.")
    interpreted = _InterpretedSerializer(
        source="interpretation", help_text="Condition names, everyday phrases and skin-tone words found in the query text."
    )
    filters = _SearchFiltersSerializer(help_text="The filters you chose (the words never filter).")
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
