"""Serializers of the gap-filling API (generation/api.py): input checking and the shapes it answers with.

The query-string plumbing (repeated parameters, skin-type choices) is shared with the catalogue's
API and lives in atlas/api/serializers.py.
"""

from __future__ import annotations

from rest_framework import serializers

from atlas.api.serializers import SKIN_TYPE_CHOICES, ConditionSlugField, QueryParamsSerializer, Repeated, StrictBooleanField
from generation.gaps import GapPolicy


class GapPolicySerializer(QueryParamsSerializer):
    target = serializers.IntegerField(min_value=1, max_value=10_000, help_text="At least this many images per cell.")
    condition = Repeated(
        child=ConditionSlugField(), required=False, max_length=50, help_text="Condition slugs; none = all."
    )
    fitzpatrick = Repeated(
        child=serializers.ChoiceField(choices=SKIN_TYPE_CHOICES), required=False, max_length=6, help_text="Skin types; none = 1-6."
    )
    max_synthetic_share = serializers.FloatField(
        min_value=0, max_value=1, required=False, help_text="Cap on synthetic / all images of a cell; leave out for none."
    )

    def validate_condition(self, value: list[str]) -> list[str]:
        from atlas.models import Condition

        unknown = sorted(set(value) - set(Condition.objects.filter(slug__in=value).values_list("slug", flat=True)))
        if unknown:
            raise serializers.ValidationError(f"unknown condition: {', '.join(unknown)} (see /api/v1/conditions/)")
        return value

    def policy(self) -> GapPolicy:
        data = self.validated_data
        skin_types = tuple(sorted({int(t) for t in data.get("fitzpatrick", [])}))
        return GapPolicy(
            target=data["target"],
            conditions=tuple(dict.fromkeys(data.get("condition", []))),
            skin_types=skin_types or GapPolicy.__dataclass_fields__["skin_types"].default,
            max_synthetic_share=data.get("max_synthetic_share"),
        )


class GenerationJobCreateSerializer(GapPolicySerializer):
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, help_text="Default: random.")
    batch_size = serializers.IntegerField(min_value=1, max_value=256, required=False)
    vary_size = StrictBooleanField(default=True, help_text="Vary the lesion box size per sample.")


class PlanCellSerializer(serializers.Serializer):
    condition = serializers.CharField()
    skin_type = serializers.IntegerField()
    count = serializers.IntegerField(help_text="Synthetic images to generate.")
    real = serializers.IntegerField()
    synthetic = serializers.IntegerField()
    maps = serializers.IntegerField(help_text="Real lesion layouts available for the maps.")
    note = serializers.CharField(allow_blank=True)


class GapPlanSerializer(serializers.Serializer):
    checkpoint = serializers.CharField(allow_null=True, help_text="The active GAN checkpoint, if any.")
    total = serializers.IntegerField()
    cells = PlanCellSerializer(many=True, help_text="Cells that will get images.")
    skipped = PlanCellSerializer(many=True, help_text="Cells below target that will not, with the reason.")


class JobCellSerializer(serializers.Serializer):
    condition = serializers.CharField()
    skin_type = serializers.IntegerField()
    planned = serializers.IntegerField()
    stored = serializers.IntegerField()
    closed = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True, help_text="Why a cell stopped short (target reached, gates), if it did.")
    drawn = serializers.IntegerField(help_text="Samples generated for the cell, failing ones included.")
    passed = serializers.IntegerField(help_text="Samples that passed every automatic gate.")
    failed = serializers.DictField(
        child=serializers.IntegerField(), help_text="Samples that failed each gate (tone, condition, copy, defects); "
        "a sample failing two gates counts under both."
    )
    max_draws = serializers.IntegerField(allow_null=True, help_text="The most samples the cell may draw.")


class GenerationJobSerializer(serializers.Serializer):
    """generation.gaps.job_status(job), plus the job's address."""

    id = serializers.IntegerField()
    url = serializers.URLField()
    status = serializers.ChoiceField(choices=["queued", "running", "succeeded", "failed", "cancelled"])
    status_label = serializers.CharField()
    is_active = serializers.BooleanField()
    planned = serializers.IntegerField()
    stored = serializers.IntegerField()
    percent = serializers.IntegerField()
    cells = JobCellSerializer(many=True)
    log = serializers.ListField(child=serializers.ListField(child=serializers.CharField()), help_text="[time, line] pairs.")
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
