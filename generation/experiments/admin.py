"""Admin for the reader-study models. A study's draw, its items and the answers are records of
an experiment: they are shown read-only; studies are created (and their items drawn) on the
staff page, and closed or reopened here or there through the same service."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from generation.experiments.reader_studies import reader_study_set_open
from generation.models import ReaderAnswer, ReaderStudy, StudyInvite, StudyItem


class _ReadOnly:
    """Rows that record what happened: no adding or editing from the admin."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class StudyItemInline(_ReadOnly, admin.TabularInline):
    model = StudyItem
    fields = ["position", "condition", "skin_type", "is_real", "image"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    show_change_link = False


class StudyInviteInline(_ReadOnly, admin.TabularInline):
    model = StudyInvite
    fields = ["label", "user", "created_at", "finished_at"]
    readonly_fields = fields
    extra = 0


@admin.register(ReaderStudy)
class ReaderStudyAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "is_open", "item_count", "reader_count", "created_by", "created_at"]
    list_filter = ["kind", "is_open"]
    search_fields = ["name"]
    actions = ["close_studies", "reopen_studies"]
    readonly_fields = ["page_link", "public_id", "kind", "per_condition", "skin_types", "seed", "is_open", "created_by",
                       "created_at"]
    fields = ["name", *readonly_fields]
    inlines = [StudyInviteInline, StudyItemInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a study's items are drawn by reader_study_create, on the staff page

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReaderStudy]:
        return super().get_queryset(request).annotate(n_items=Count("items", distinct=True),
                                                      n_readers=Count("invites", distinct=True))

    @admin.display(description="Images", ordering="n_items")
    def item_count(self, study: ReaderStudy) -> int:
        return study.n_items

    @admin.display(description="Readers", ordering="n_readers")
    def reader_count(self, study: ReaderStudy) -> int:
        return study.n_readers

    @admin.display(description="Study page")
    def page_link(self, study: ReaderStudy) -> str:
        url = reverse("generation:experiments:study_detail", args=[study.public_id])
        return format_html('<a href="{}">Open the study page</a>', url)

    @admin.action(description="Close the selected studies (answers refused)")
    def close_studies(self, request: HttpRequest, queryset: QuerySet[ReaderStudy]) -> None:
        for study in queryset:
            reader_study_set_open(study=study, is_open=False)
        self.message_user(request, f"Closed {queryset.count()} stud{'ies' if queryset.count() != 1 else 'y'}.")

    @admin.action(description="Reopen the selected studies")
    def reopen_studies(self, request: HttpRequest, queryset: QuerySet[ReaderStudy]) -> None:
        for study in queryset:
            reader_study_set_open(study=study, is_open=True)
        self.message_user(request, f"Reopened {queryset.count()} stud{'ies' if queryset.count() != 1 else 'y'}.")


@admin.register(ReaderAnswer)
class ReaderAnswerAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ["invite", "item", "judged_real", "shows_condition", "chosen", "created_at"]
    list_filter = ["item__study", "item__is_real"]
    list_select_related = ["invite", "item", "chosen"]
