"""Licence-aware exports: a zip of a filtered set of public images for one intended use.

`export_job_create` checks the request and queues the job; `export_job_run` (called by the
Celery task) writes the zip: images/, metadata.csv, attribution.txt, licences/<id>.txt, and
excluded.csv listing the images whose licence forbids the use. State lives on the ExportJob row.
Synthetic files carry C2PA content credentials signed at export time (their review state now),
with the manifest signed at ingestion kept inside as its parent.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
import zipfile
from pathlib import PurePosixPath

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from atlas.filters import ImageFilters
from atlas.licences import licence_forbids, licence_get
from atlas.models import ApiClient, ExportJob, Image
from atlas.selectors import images_matching
from atlas.services.credentials import credentials_sign_export
from atlas.provenance import public_provenance

logger = logging.getLogger(__name__)


class ExportRefused(ValueError):
    """An export request the service turns down. `code` is stable for programs; the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

METADATA_COLUMNS = [
    "public_id", "file", "condition", "condition_name", "fitzpatrick_type", "fitzpatrick_label_source", "monk_tone",
    "body_site", "origin", "is_synthetic", "review_state", "trained_on", "source", "licence", "licence_url",
    "attribution", "width", "height", "regions", "provenance", "condition_summary",
]  # fmt: skip


def export_job_create(
    *,
    filters: ImageFilters,
    commercial: bool,
    derivatives: bool,
    client: ApiClient | None,
    requested_by: AbstractBaseUser | None,
) -> ExportJob:
    """Queue an export of the public images matching `filters` (refused when there are too many)."""
    count = images_matching(filters).count()
    if count > settings.API_EXPORT_MAX_IMAGES:
        raise ExportRefused(
            "too_many_images",
            f"{count:,} images match; an export holds at most {settings.API_EXPORT_MAX_IMAGES:,}. Narrow the filters.",
        )
    job = ExportJob.objects.create(
        filters=filters.as_dict(),
        commercial=commercial,
        derivatives=derivatives,
        client=client,
        requested_by=requested_by if requested_by is not None and requested_by.is_authenticated else None,
    )
    from atlas.tasks import export_job_run_task

    export_job_run_task.delay_on_commit(job.pk)
    return job


def export_job_run(*, job_id: int) -> ExportJob:
    """Build the zip for one job. Idempotent: a finished job is left alone, a retried one rebuilt."""
    with transaction.atomic():
        job = ExportJob.objects.select_for_update().get(pk=job_id)
        if job.status == ExportJob.Status.SUCCEEDED:
            return job
        job.status, job.started_at, job.error = ExportJob.Status.RUNNING, timezone.now(), ""
        job.save(update_fields=["status", "started_at", "error"])
    try:
        filters = ImageFilters(**{k: tuple(v) if isinstance(v, list) else v for k, v in job.filters.items()})
        images = list(images_matching(filters).order_by("id")[: settings.API_EXPORT_MAX_IMAGES])
        job.file.name, job.size_bytes, job.image_count, job.excluded = _write_zip(job, images)
        job.status = ExportJob.Status.SUCCEEDED
    except Exception as exc:
        logger.exception("export %s failed", job.public_id)
        job.status, job.error = ExportJob.Status.FAILED, f"{type(exc).__name__}: {exc}"
    job.finished_at = timezone.now()
    job.save()
    return job


def _write_zip(job: ExportJob, images: list[Image]) -> tuple[str, int, int, list[dict]]:
    included: list[Image] = []
    excluded: list[dict] = []
    with tempfile.TemporaryFile() as spool:
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for image in images:
                reason = licence_forbids(image.licence, commercial=job.commercial, derivatives=job.derivatives)
                if not reason:
                    reason = _add_image(archive, image)
                if reason:
                    excluded.append({"public_id": str(image.public_id), "licence": image.licence, "reason": reason})
                else:
                    included.append(image)
            archive.writestr("metadata.csv", _metadata_csv(included))
            archive.writestr("attribution.txt", _attribution_text(included))
            archive.writestr("excluded.csv", _excluded_csv(excluded))
            archive.writestr("README.txt", _readme(job, len(included), len(excluded)))
            for licence_id in sorted({image.licence for image in included}):
                archive.writestr(f"licences/{_safe(licence_id)}.txt", licence_get(licence_id).text)
        size = spool.tell()
        spool.seek(0)
        # A rerun replaces the file of an earlier, interrupted attempt.
        name = f"exports/{job.public_id.hex}.zip"
        if default_storage.exists(name):
            default_storage.delete(name)
        stored = default_storage.save(name, File(spool, name="export.zip"))
    return stored, size, len(included), excluded


def _add_image(archive: zipfile.ZipFile, image: Image) -> str:
    """Copy the stored file into the zip; the reason it could not be ("" when it was)."""
    try:
        with default_storage.open(image.file.name, "rb") as handle:
            data = handle.read()
    except OSError:
        return "the stored file is missing"
    if image.is_synthetic:
        # Signed again now, so the file's credentials state its review state at export time.
        data = credentials_sign_export(data=data, image=image)
    # JPEG and PNG are already compressed: store them as they are.
    archive.writestr(_member(image), data, compress_type=zipfile.ZIP_STORED)
    return ""


def _member(image: Image) -> str:
    return f"images/{image.public_id}{PurePosixPath(image.file.name).suffix}"


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in text)


def _metadata_csv(images: list[Image]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(METADATA_COLUMNS)
    for image in images:
        licence = licence_get(image.licence)
        provenance = public_provenance(image.provenance) if image.is_synthetic else {}
        regions = [{"x": r.x, "y": r.y, "width": r.width, "height": r.height, "label": r.label} for r in image.regions.all()]
        writer.writerow([
            image.public_id, _member(image), image.condition.slug, image.condition.name, image.fitzpatrick_type or "",
            image.fitzpatrick_label_source, image.monk_tone or "", image.body_site, image.origin,
            "true" if image.is_synthetic else "false", image.review_state,
            _trained_on(provenance) if image.is_synthetic else "",
            image.source.slug, image.licence, licence.url if licence else "", image.attribution,
            image.width, image.height, json.dumps(regions), json.dumps(provenance, sort_keys=True) if provenance else "",
            image.condition.summary,
        ])  # fmt: skip
    return buffer.getvalue()


def _trained_on(provenance: dict) -> str:
    data = provenance.get("training_data")
    summary = data.get("summary") if isinstance(data, dict) else data
    return str(summary) if summary else "not recorded"


def _attribution_text(images: list[Image]) -> str:
    lines = ["Attributions for the images in this export, one line per image: file, credit, licence.", ""]
    for image in images:
        credit = (image.attribution or image.source.name).strip().rstrip(".")
        synthetic = " Synthetic image generated by a GAN, not a photograph of a patient." if image.is_synthetic else ""
        lines.append(f"{_member(image)}: {credit}. {_licence_words(image.licence)}.{synthetic}")
    return "\n".join(lines) + "\n"


def _licence_words(licence_id: str) -> str:
    """How an attribution names a licence: its full title, short name and address."""
    licence = licence_get(licence_id)
    if licence is None:  # exports leave unknown licences out; kept readable all the same
        return f"Licence: {licence_id} (terms not recognised by Atlas)"
    verb = "Dedicated to the public domain under" if licence.id == "CC0-1.0" else "Licensed under"
    short = f" ({licence.short_name})" if licence.short_name else ""
    return f"{verb} {licence.name}{short}, {licence.url}"


def _excluded_csv(excluded: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["public_id", "licence", "reason"])
    writer.writeheader()
    writer.writerows(excluded)
    return buffer.getvalue()


def _readme(job: ExportJob, included: int, excluded: int) -> str:
    uses = [name for name, wanted in (("commercial use", job.commercial), ("derivatives", job.derivatives)) if wanted]
    return (
        f"Atlas export {job.public_id}\n"
        f"Created {timezone.now():%Y-%m-%d %H:%M} UTC for: {', '.join(uses) or 'non-commercial use without changes'}.\n"
        f"Filters: {json.dumps(job.filters, sort_keys=True)}\n\n"
        f"{included} images in images/, described in metadata.csv, credited in attribution.txt, under the\n"
        f"licences summarised in licences/. {excluded} matching images were left out because their licence\n"
        "does not allow this use (or could not be checked); they are listed in excluded.csv.\n"
        "Images marked synthetic (is_synthetic=true) were generated by a GAN and show no real patient.\n"
        "condition_summary is the condition's one-sentence teaching text (educational, not diagnostic);\n"
        "fitzpatrick_label_source says who judged the skin type.\n"
        "review_state says a reviewer approved each one (approved; not_required where the deployment\n"
        "switched review off) and trained_on what the model learnt from. Lesion boxes (regions) are in\n"
        "the image's pixel coordinates. Each synthetic file carries signed C2PA content credentials\n"
        "(trained algorithmic media, model, checkpoint, review state at export); check them with\n"
        "`python manage.py verify_credentials FILE...` or any C2PA tool.\n"
    )
