"""Admin for GAN checkpoints and gap-filling jobs. Actions call the same services as the
staff page and the command (generation.gaps)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from generation.gaps import GapError, GapPolicy, generation_job_cancel, generation_job_create
from generation.models import GanCheckpoint, GenerationJob


@admin.register(GanCheckpoint)
class GanCheckpointAdmin(admin.ModelAdmin):
    list_display = ["run", "step", "preset", "is_active", "created_at"]
    list_filter = ["is_active", "preset"]
    readonly_fields = ["path", "run", "preset", "step", "metrics", "data_fingerprint", "code_version", "created_at", "is_active"]


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "progress_tag", "target", "cells", "requested_by", "created_at", "finished_at"]
    list_filter = ["status"]
    actions = ["cancel_jobs", "fill_again"]
    readonly_fields = [
        "page_link", "status", "requested_by", "checkpoint", "target", "max_synthetic_share", "seed", "batch_size",
        "vary_size", "planned_total", "stored_total", "plan", "progress", "after", "error", "log",
        "lease_owner", "lease_until", "created_at", "started_at", "finished_at",
    ]  # fmt: skip
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs start from the "Fill gaps" page, the command or the action below

    @admin.display(description="Stored / planned")
    def progress_tag(self, job: GenerationJob) -> str:
        return f"{job.stored_total} / {job.planned_total}"

    @admin.display(description="Cells")
    def cells(self, job: GenerationJob) -> int:
        return len(job.plan)

    @admin.display(description="Progress page")
    def page_link(self, job: GenerationJob) -> str:
        return format_html('<a href="{}">Watch job {}</a>', reverse("generation:job_detail", args=[job.pk]), job.pk)

    @admin.action(description="Cancel the selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> None:
        done = 0
        for job in queryset.filter(status__in=GenerationJob.ACTIVE):
            try:
                generation_job_cancel(job=job, by=request.user)
                done += 1
            except GapError as exc:
                self.message_user(request, str(exc), messages.WARNING)
        self.message_user(request, f"Cancelled {done} job{'s' if done != 1 else ''}.")

    @admin.action(description="Fill gaps again with the selected jobs' settings (what is still missing)")
    def fill_again(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> None:
        for old in queryset:
            policy = GapPolicy(
                target=old.target,
                conditions=tuple(dict.fromkeys(p["condition"] for p in old.plan)),
                skin_types=tuple(sorted({p["skin_type"] for p in old.plan})),
                max_synthetic_share=old.max_synthetic_share,
            )
            try:
                job = generation_job_create(policy=policy, requested_by=request.user, vary_size=old.vary_size)
            except GapError as exc:
                self.message_user(request, f"Job {old.pk}: {exc}", messages.WARNING)
                continue
            url = reverse("generation:job_detail", args=[job.pk])
            self.message_user(request, format_html('Job {} queued from job {}: <a href="{}">watch it</a>.', job.pk, old.pk, url))

# The reader-study models' admin lives beside the reader studies; importing it registers it.
from generation.experiments import admin as experiments_admin  # noqa: E402, F401
