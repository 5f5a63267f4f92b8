"""Curator admin. New images enter through `image_ingest` (ImageIngestForm), never around it."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html

from atlas.api.tokens import api_token_create, api_token_revoke
from atlas.forms import ConditionAdminForm, ConditionLabelMappingForm, ImageIngestForm
from atlas.models import ApiClient, ApiToken, Condition, ConditionLabelMapping, ExportJob, Image, Region, Source
from atlas.services.conditions import ConditionCurationError, condition_accept, condition_merge
from atlas.services.image_files import image_visibility_set


class RegionInline(admin.TabularInline):
    model = Region
    extra = 0
    fields = ["x", "y", "width", "height", "label"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = [
        "thumbnail_tag", "short_id", "condition", "fitzpatrick_type", "origin", "review_state", "source", "is_public",
        "created_at",
    ]  # fmt: skip
    list_display_links = ["thumbnail_tag", "short_id"]
    list_filter = ["condition", "fitzpatrick_type", "origin", "review_state", "source", "is_public"]
    list_select_related = ["condition", "source"]
    search_fields = ["public_id", "external_id", "case_id"]
    list_per_page = 50
    inlines = [RegionInline]
    actions = ["publish", "hide"]
    add_form = ImageIngestForm
    add_fieldsets = [(None, {"fields": ["upload", *ImageIngestForm.Meta.fields, "boxes"]})]
    # Files, pixels and origin are facts of ingestion; change them by ingesting again. The review
    # state changes only through the review queue (generation.review: reviewer and time recorded).
    readonly_fields = [
        "preview", "public_id", "origin", "review_state", "sha256", "width", "height", "file_size",
        "provenance_json", "created_at", "updated_at", "measured_fitzpatrick_type", "skin_tone",
    ]  # fmt: skip
    fieldsets = [
        (None, {"fields": ["preview", "public_id", "origin", "review_state", "condition", "is_public"]}),
        ("Skin tone", {"fields": ["fitzpatrick_type", "fitzpatrick_label_source", "monk_tone", "measured_fitzpatrick_type", "skin_tone"]}),
        ("Case", {"fields": ["body_site", "case_id", "external_id"]}),
        ("Source and licence", {"fields": ["source", "licence", "attribution"]}),
        ("File", {"fields": ["sha256", "width", "height", "file_size", "provenance_json", "created_at", "updated_at"]}),
    ]

    @admin.display(description="Thumbnail")
    def thumbnail_tag(self, image: Image) -> str:
        badge = " (synthetic)" if image.is_synthetic else ""
        return format_html(
            '<img src="{}" alt="{}{}" width="64" height="64" style="object-fit:cover">',
            image.thumbnail_url, image.condition, badge,
        )

    @admin.display(description="Public id", ordering="public_id")
    def short_id(self, image: Image) -> str:
        # The full id is long; search finds an image by its full id or any part of it.
        return format_html('<span title="{}">{}…</span>', image.public_id, str(image.public_id)[:8])

    @admin.display(description="Image")
    def preview(self, image: Image) -> str:
        return format_html('<a href="{}"><img src="{}" alt="{}" style="max-width:256px"></a>',
                           image.file_url, image.thumbnail_url, image.condition)

    @admin.display(description="File size")
    def file_size(self, image: Image) -> str:
        try:
            return f"{image.file.size:,} bytes"
        except OSError:
            return "file missing"

    @admin.display(description="Provenance")
    def provenance_json(self, image: Image) -> str:
        if not image.provenance:
            return "-"
        return format_html("<pre>{}</pre>", json.dumps(image.provenance, indent=2, sort_keys=True))

    def get_fieldsets(self, request: HttpRequest, obj: Image | None = None):
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_form(self, request: HttpRequest, obj: Image | None = None, change: bool = False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Image | None = None):
        return () if obj is None else self.readonly_fields

    def get_inlines(self, request: HttpRequest, obj: Image | None):
        # Regions of a new image are given as boxes on the ingest form (validated by ingestion).
        return [] if obj is None else self.inlines

    def save_model(self, request: HttpRequest, obj: Image, form, change: bool) -> None:
        # On add, ImageIngestForm has already stored the image through image_ingest.
        if not change:
            return
        if "is_public" not in form.changed_data:
            super().save_model(request, obj, form, change)
            return
        # Publishing or hiding moves the files (image_visibility_set): the other fields first.
        wanted, obj.is_public = obj.is_public, not obj.is_public
        super().save_model(request, obj, form, change)
        moved = image_visibility_set(image=obj, is_public=wanted)
        obj.is_public, obj.file, obj.thumbnail = moved.is_public, moved.file, moved.thumbnail

    @admin.action(description="Publish the selected images (their files become public)")
    def publish(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        self._set_visibility(request, queryset, is_public=True)

    @admin.action(description="Hide the selected images (their files become private)")
    def hide(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        self._set_visibility(request, queryset, is_public=False)

    def _set_visibility(self, request: HttpRequest, queryset: QuerySet[Image], *, is_public: bool) -> None:
        changed = 0
        for image in queryset.filter(is_public=not is_public):
            image_visibility_set(image=image, is_public=is_public)
            changed += 1
        messages.success(request, f"{'Published' if is_public else 'Hid'} {changed} image(s).")


class LabelMappingInline(admin.TabularInline):
    model = ConditionLabelMapping
    form = ConditionLabelMappingForm
    extra = 1
    fields = ["dataset", "label"]


class ConditionMergeForm(forms.Form):
    into = forms.ModelChoiceField(
        queryset=Condition.objects.public(), label="Merge into", help_text="A curated condition of the public vocabulary."
    )


@admin.register(Condition)
class ConditionAdmin(admin.ModelAdmin):
    form = ConditionAdminForm
    list_display = ["name", "slug", "category", "needs_curation", "image_count"]
    list_filter = ["needs_curation", "category"]
    search_fields = ["name", "slug", "synonyms"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["lookalikes"]
    inlines = [LabelMappingInline]
    actions = ["accept", "merge"]
    fieldsets = [
        (None, {"fields": ["slug", "name", "category", "synonyms"]}),
        ("Teaching text (educational, not diagnostic)", {"fields": [
            "summary", "description", "appearance_light", "appearance_dark", "lookalikes", "see_clinician", "further_reading",
        ]}),
    ]  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet[Condition]:
        return super().get_queryset(request).annotate(image_count=Count("images"))

    @admin.display(description="Images", ordering="image_count")
    def image_count(self, condition: Condition) -> int:
        return condition.image_count

    @admin.action(description="Accept the selected conditions into the public vocabulary", permissions=["change"])
    def accept(self, request: HttpRequest, queryset: QuerySet[Condition]) -> None:
        for condition in queryset:
            try:
                condition_accept(condition=condition)
                messages.success(request, f"{condition.name} is now public, with its images.")
            except ConditionCurationError as exc:
                messages.warning(request, str(exc))

    @admin.action(description="Merge the selected conditions into an existing one…", permissions=["change", "delete"])
    def merge(self, request: HttpRequest, queryset: QuerySet[Condition]):
        form = ConditionMergeForm(request.POST if "apply" in request.POST else None)
        if not form.is_bound or not form.is_valid():
            context = {
                **self.admin_site.each_context(request), "title": "Merge conditions", "conditions": queryset,
                "form": form, "opts": self.model._meta, "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }  # fmt: skip
            return TemplateResponse(request, "admin/atlas/condition/merge.html", context)
        for condition in queryset:
            try:
                result = condition_merge(condition=condition, into=form.cleaned_data["into"])
            except ConditionCurationError as exc:
                messages.error(request, str(exc))
                continue
            messages.success(
                request,
                f"Merged {result.merged_name} into {result.into.name}: {result.images_moved} image(s) moved, "
                f"{result.mappings_moved} label mapping(s) now point at {result.into.name}.",
            )
        return None


@admin.register(ConditionLabelMapping)
class ConditionLabelMappingAdmin(admin.ModelAdmin):
    form = ConditionLabelMappingForm
    list_display = ["dataset", "label", "condition"]
    list_filter = ["dataset", "condition"]
    list_select_related = ["condition"]
    search_fields = ["label", "condition__name"]
    autocomplete_fields = ["condition"]


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "licence", "allows_generative_training", "is_procedural", "image_count"]
    list_filter = ["allows_generative_training", "is_procedural", "licence"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Source]:
        return super().get_queryset(request).annotate(image_count=Count("images"))

    @admin.display(description="Images", ordering="image_count")
    def image_count(self, source: Source) -> int:
        return source.image_count


# --- REST API: clients, tokens (key shown once), exports --------------------------------------


class ApiTokenInline(admin.TabularInline):
    model = ApiToken
    extra = 0
    fields = ["prefix", "name", "created_at", "last_used_at", "expires_at", "revoked_at"]
    readonly_fields = ["prefix", "name", "created_at", "last_used_at"]
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # keys are made on the token's own add page, which shows the key once


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "is_active", "contact_email", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "contact_email", "user__username"]
    autocomplete_fields = ["user"]
    inlines = [ApiTokenInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "client", "name", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = ["client"]
    list_select_related = ["client"]
    search_fields = ["prefix", "name", "client__name"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None):
        if obj is None:
            return ["client", "name", "expires_at"]
        return ["client", "prefix", "name", "created_at", "last_used_at", "expires_at", "revoked_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None):
        return [] if obj is None else ["client", *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token, key = api_token_create(client=obj.client, name=obj.name, expires_at=obj.expires_at)
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = token.pk, token.prefix, token.key_hash, token.created_at
        messages.warning(request, f"Copy this key now; it is not stored and will not be shown again: {key}")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            api_token_revoke(token=token)
        messages.success(request, f"Revoked {queryset.count()} token(s).")


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ["public_id", "client", "status", "image_count", "commercial", "derivatives", "created_at"]
    list_filter = ["status", "commercial", "derivatives"]
    list_select_related = ["client"]
    readonly_fields = [f.name for f in ExportJob._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # exports are requested through the API
