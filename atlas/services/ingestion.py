"""The one way an image enters the catalogue.

The admin, the API, every importer, the demo atlas and the GAN output call `image_ingest`,
so validation lives here: content sniffing, size and pixel limits, EXIF orientation, metadata
stripping, re-encoding, pixel hashing, duplicate detection, thumbnails, regions, one
transaction, no orphan files, follow-up tasks enqueued on commit. A synthetic file is stored
with its PNG text marker and a signed C2PA manifest (atlas/services/credentials.py).
"""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps, PngImagePlugin, UnidentifiedImageError

from atlas.content_credentials import checkpoint_name
from atlas.models import Condition, Image, Region, Source
from atlas.services.credentials import CredentialsError, credentials_sign_generated
from atlas.services.image_files import image_file_name
from atlas.services.skin_tone import measurement_fields, skin_tone_of_pixels

logger = logging.getLogger(__name__)

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")


class IngestionError(ValueError):
    """An input the catalogue refuses. `code` is stable for programs; the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Box:
    """A region of interest in the oriented image's pixel coordinates."""

    x: int
    y: int
    width: int
    height: int
    label: str = ""


@dataclass(frozen=True)
class IngestResult:
    image: Image
    created: bool  # False: the pixels were already in the catalogue; nothing was stored


@dataclass
class _Decoded:
    pixels: PILImage.Image
    source_format: str
    sha256: str = field(default="")


def image_ingest(
    *,
    file: IO[bytes] | bytes,
    condition: Condition,
    source: Source,
    origin: str = Image.Origin.REAL,
    fitzpatrick_type: int | None = None,
    fitzpatrick_label_source: str = "",
    monk_tone: int | None = None,
    body_site: str = "",
    licence: str = "",
    attribution: str = "",
    case_id: str = "",
    external_id: str = "",
    regions: Sequence[Box] = (),
    provenance: dict | None = None,
    is_public: bool = True,
    enqueue_followups: bool = True,
    estimate_skin_type: bool = False,
    skin_type_range: tuple[int, int] | None = None,
) -> IngestResult:
    """Validate, clean and store one image with its metadata and regions.

    The skin tone of every image is measured from its pixels (atlas.skin_tone) and stored beside
    its label; with `estimate_skin_type` (importers) a real image whose type is unknown takes a
    confident measurement as its label, marked "estimated from colour", kept inside
    `skin_type_range` when the source gives one.

    Raises IngestionError for anything the catalogue refuses; then nothing is written.
    A duplicate (same decoded pixels) returns the existing image with created=False.
    """
    prepared = image_prepare(
        file=file, condition=condition, source=source, origin=origin, fitzpatrick_type=fitzpatrick_type,
        fitzpatrick_label_source=fitzpatrick_label_source, monk_tone=monk_tone, body_site=body_site, licence=licence,
        attribution=attribution, case_id=case_id, external_id=external_id, regions=regions, provenance=provenance,
        is_public=is_public, estimate_skin_type=estimate_skin_type, skin_type_range=skin_type_range,
    )
    if prepared.existing is not None:
        return IngestResult(image=prepared.existing, created=False)
    return image_commit(prepared=prepared, enqueue_followups=enqueue_followups)


@dataclass
class PreparedImage:
    """An image checked and cleaned, its files stored, its row not written yet (image_prepare).
    `existing`: the pixels are already in the catalogue, so nothing was stored."""

    fields: dict
    regions: list[Box]
    stored: list[str]
    existing: Image | None = None

    def discard(self) -> None:
        """Remove the stored files (the row was never written, or was rolled back)."""
        _delete_files(self.stored)
        self.stored = []


def image_prepare(
    *,
    file: IO[bytes] | bytes,
    condition: Condition,
    source: Source,
    origin: str = Image.Origin.REAL,
    fitzpatrick_type: int | None = None,
    fitzpatrick_label_source: str = "",
    monk_tone: int | None = None,
    body_site: str = "",
    licence: str = "",
    attribution: str = "",
    case_id: str = "",
    external_id: str = "",
    regions: Sequence[Box] = (),
    provenance: dict | None = None,
    is_public: bool = True,
    estimate_skin_type: bool = False,
    skin_type_range: tuple[int, int] | None = None,
) -> PreparedImage:
    """The slow half of image_ingest: decode, check, encode and store the files, outside any
    transaction, so a caller that must hold a lock to write the row (gap filling) holds it
    only for `image_commit`. Raises IngestionError; then nothing is stored."""
    _check_labels(origin, fitzpatrick_type, fitzpatrick_label_source, monk_tone, provenance)
    decoded = _decode(_read_limited(file))
    width, height = decoded.pixels.size
    _check_regions(regions, width, height)

    existing = Image.objects.filter(sha256=decoded.sha256).first()
    if existing is not None:
        return PreparedImage(fields={"sha256": decoded.sha256}, regions=[], stored=[], existing=existing)

    public_id = uuid.uuid4()
    is_synthetic = origin == Image.Origin.SYNTHETIC
    tone = measurement_fields(
        skin_tone_of_pixels(decoded.pixels, [(b.x, b.y, b.width, b.height) for b in regions]),
        fitzpatrick_type=fitzpatrick_type,
        label_source=fitzpatrick_label_source,
        estimate=estimate_skin_type and origin == Image.Origin.REAL,
        within=skin_type_range,
    )
    main_bytes, extension = _encode_main(decoded, synthetic_marker=_synthetic_marker(provenance) if is_synthetic else None)
    if is_synthetic:
        main_bytes = _with_credentials(
            main_bytes, provenance=provenance, title=f"{public_id}.{extension}", review_state=initial_review_state(origin)
        )
    thumb_bytes = _encode_thumbnail(decoded.pixels)
    prepared = PreparedImage(
        fields={
            "public_id": public_id,
            "sha256": decoded.sha256,
            "width": width,
            "height": height,
            "origin": origin,
            "condition": condition,
            **tone,  # fitzpatrick_type, its label source, the measured type and the measurement
            "monk_tone": monk_tone,
            "body_site": body_site[:80],
            "source": source,
            "licence": licence or source.licence,
            "attribution": attribution[:500],
            "case_id": case_id[:120],
            "external_id": external_id[:200],
            "provenance": provenance or {},
            "is_public": is_public,
            "review_state": initial_review_state(origin),
        },
        regions=list(regions),
        stored=[],
    )
    try:
        prepared.stored.append(default_storage.save(image_file_name("file", extension, public=is_public), ContentFile(main_bytes)))
        prepared.stored.append(default_storage.save(image_file_name("thumbnail", "jpg", public=is_public), ContentFile(thumb_bytes)))
    except BaseException:
        prepared.discard()
        raise
    return prepared


def image_commit(*, prepared: PreparedImage, enqueue_followups: bool = True) -> IngestResult:
    """The quick half: the row and its regions in one transaction. On failure the prepared
    files are removed; pixels stored meanwhile by another writer give that image, created=False."""
    try:
        with transaction.atomic():
            image = Image.objects.create(**prepared.fields, file=prepared.stored[0], thumbnail=prepared.stored[1])
            Region.objects.bulk_create(
                Region(image=image, x=b.x, y=b.y, width=b.width, height=b.height, label=b.label[:80])
                for b in prepared.regions
            )
            if enqueue_followups:
                transaction.on_commit(lambda: enqueue_after_ingest(image.pk))
    except IntegrityError:
        prepared.discard()
        # Another writer stored the same pixels between our check and our insert.
        existing = Image.objects.filter(sha256=prepared.fields["sha256"]).first()
        if existing is None:
            raise
        return IngestResult(image=existing, created=False)
    except BaseException:
        prepared.discard()
        raise
    return IngestResult(image=image, created=True)


def initial_review_state(origin: str) -> str:
    """Synthetic images wait for a reviewer unless review is switched off (ATLAS_SYNTHETIC_REVIEW)."""
    if origin == Image.Origin.SYNTHETIC and settings.ATLAS_SYNTHETIC_REVIEW:
        return Image.ReviewState.PENDING
    return Image.ReviewState.NOT_REQUIRED


def image_sha256(file: IO[bytes] | bytes) -> str:
    """The catalogue's identity of an image: what `image_ingest` would store it under."""
    return _decode(_read_limited(file)).sha256


def decode_upload(file: IO[bytes] | bytes) -> PILImage.Image:
    """Check and decode an upload under the same limits as `image_ingest`, storing nothing.

    Used by search-by-photo. Raises IngestionError (empty, too large, not an image, corrupt).
    """
    return _decode(_read_limited(file)).pixels


# --- validation -----------------------------------------------------------------------------


def _check_labels(origin: str, fitzpatrick_type, label_source: str, monk_tone, provenance) -> None:
    if origin not in Image.Origin.values:
        raise IngestionError("bad_origin", f"origin must be one of {Image.Origin.values}, not {origin!r}")
    if fitzpatrick_type is not None and fitzpatrick_type not in range(1, 7):
        raise IngestionError("bad_skin_type", f"Fitzpatrick type must be 1-6, not {fitzpatrick_type!r}")
    if label_source and label_source not in Image.LabelSource.values:
        raise IngestionError("bad_label_source", f"skin-type label source must be one of {Image.LabelSource.values}")
    if monk_tone is not None and monk_tone not in range(1, 11):
        raise IngestionError("bad_monk_tone", f"Monk tone must be 1-10, not {monk_tone!r}")
    if origin == Image.Origin.SYNTHETIC and not provenance:
        raise IngestionError("missing_provenance", "a synthetic image needs its provenance (model, checkpoint, seed)")


def _check_regions(regions: Iterable[Box], width: int, height: int) -> None:
    for number, box in enumerate(regions, start=1):
        if not all(type(value) is int for value in (box.x, box.y, box.width, box.height)):
            raise IngestionError("bad_region", f"region {number} needs whole-pixel integer coordinates, got {box}")
        if box.width <= 0 or box.height <= 0:
            raise IngestionError("empty_region", f"region {number} is empty ({box.width}x{box.height})")
        if box.x < 0 or box.y < 0 or box.x + box.width > width or box.y + box.height > height:
            raise IngestionError(
                "region_outside",
                f"region {number} ({box.x},{box.y} {box.width}x{box.height}) lies outside the {width}x{height} image",
            )


def _read_limited(file: IO[bytes] | bytes) -> bytes:
    limit = settings.ATLAS_MAX_UPLOAD_BYTES
    data = file if isinstance(file, bytes) else file.read(limit + 1)
    if len(data) == 0:
        raise IngestionError("empty_file", "the file is empty (0 bytes)")
    if len(data) > limit:
        raise IngestionError("too_large", f"the file is larger than the {_human_bytes(limit)} limit")
    return data


def _human_bytes(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):g} MiB"
    return f"{count:,} bytes"


def _decode(data: bytes) -> _Decoded:
    try:
        # formats= makes Pillow sniff the content; the file name and extension are never trusted.
        with PILImage.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as opened:
            source_format = opened.format or ""
            width, height = opened.size
            if width * height > settings.ATLAS_MAX_IMAGE_PIXELS:
                raise IngestionError(
                    "too_many_pixels",
                    f"{width}x{height} pixels is over the {settings.ATLAS_MAX_IMAGE_PIXELS:,}-pixel limit",
                )
            if width < 1 or height < 1:
                raise IngestionError("no_pixels", "the image has no pixels")
            opened.load()
            icc_profile = opened.info.get("icc_profile")
            pixels = _to_rgb(_to_srgb(_upright(opened), icc_profile))
    except IngestionError:
        raise
    except UnidentifiedImageError:
        raise IngestionError("not_an_image", "not a JPEG, PNG or WebP image (the content was checked, not the name)") from None
    except PILImage.DecompressionBombError:
        raise IngestionError("too_many_pixels", "the image declares too many pixels (decompression bomb)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise IngestionError("corrupt", f"the image is truncated or corrupt: {exc}") from None
    # Nothing from the source file may ride along into the stored file: some encoders
    # (PNG's ICC profile, JPEG's comment) copy these from .info when saving.
    pixels.info = {}
    digest = hashlib.sha256(f"{pixels.width}x{pixels.height}:".encode())
    digest.update(pixels.tobytes())
    return _Decoded(pixels=pixels, source_format=source_format, sha256=digest.hexdigest())


_SRGB = ImageCms.createProfile("sRGB")

_ORIENTATION_FIXES = {
    2: PILImage.Transpose.FLIP_LEFT_RIGHT,
    3: PILImage.Transpose.ROTATE_180,
    4: PILImage.Transpose.FLIP_TOP_BOTTOM,
    5: PILImage.Transpose.TRANSPOSE,
    6: PILImage.Transpose.ROTATE_270,
    7: PILImage.Transpose.TRANSVERSE,
    8: PILImage.Transpose.ROTATE_90,
}


def _upright(image: PILImage.Image) -> PILImage.Image:
    """Apply the EXIF orientation. Phones write broken EXIF blocks; the pixels are still good."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - Pillow raises TypeError, struct.error, ... while rewriting bad EXIF
        try:
            orientation = image.getexif().get(0x0112)
        except Exception:  # noqa: BLE001 - unreadable EXIF: no orientation to apply
            orientation = None
        fix = _ORIENTATION_FIXES.get(orientation)
        return image.transpose(fix) if fix is not None else image.copy()


def _to_srgb(image: PILImage.Image, icc_profile: bytes | None) -> PILImage.Image:
    """Bake an embedded colour profile into the pixels, since the profile itself is stripped.

    Without this a Display-P3 or Adobe-RGB photograph would change colour once stored.
    """
    if not icc_profile or image.mode not in ("RGB", "CMYK"):
        return image
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        return ImageCms.profileToProfile(image, profile, _SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image  # an unreadable profile: keep the pixels as they are


def _to_rgb(image: PILImage.Image) -> PILImage.Image:
    if image.mode == "RGB":
        return image.copy()
    if image.mode.startswith("I"):
        # 16-bit greyscale: convert("RGB") would clip everything above 255 to white.
        levels = np.asarray(image, dtype=np.int64) >> 8
        return PILImage.fromarray(np.clip(levels, 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = PILImage.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


# --- encoding -------------------------------------------------------------------------------


def _encode_main(decoded: _Decoded, *, synthetic_marker: dict[str, str] | None) -> tuple[bytes, str]:
    """Re-encode from pixels only, so no EXIF, XMP, ICC or comments survive.

    Lossless sources and synthetic images are stored as PNG (a synthetic image carries its
    marker in PNG text chunks); photographs as JPEG.
    """
    buffer = io.BytesIO()
    if synthetic_marker is not None or decoded.source_format == "PNG":
        info = PngImagePlugin.PngInfo()
        for key, value in (synthetic_marker or {}).items():
            info.add_itxt(key, value)
        decoded.pixels.save(buffer, format="PNG", pnginfo=info, optimize=False, compress_level=6)
        return buffer.getvalue(), "png"
    decoded.pixels.save(buffer, format="JPEG", quality=settings.ATLAS_JPEG_QUALITY, optimize=True)
    return buffer.getvalue(), "jpg"


def _encode_thumbnail(pixels: PILImage.Image) -> bytes:
    size = settings.ATLAS_THUMBNAIL_SIZE
    thumb = pixels.copy()
    thumb.thumbnail((size, size), PILImage.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=85, optimize=True)
    return buffer.getvalue()


def _synthetic_marker(provenance: dict | None) -> dict[str, str]:
    provenance = provenance or {}
    return {
        "Atlas-Origin": "synthetic",
        "Atlas-Model": str(provenance.get("model", "unknown")),
        "Atlas-Checkpoint": checkpoint_name(provenance.get("checkpoint", "")),
        "Description": "SYNTHETIC image generated by a GAN for the Atlas skin image atlas. Not a photograph of a patient.",
    }


def _with_credentials(data: bytes, *, provenance: dict, title: str, review_state: str) -> bytes:
    """Embed the C2PA manifest (trained algorithmic media, model, checkpoint, review state), before anything is stored."""
    try:
        return credentials_sign_generated(data=data, provenance=provenance, title=title, review_state=review_state)
    except CredentialsError as exc:
        raise IngestionError("credentials_failed", f"the synthetic image could not be signed: {exc}") from None


def stored_image_pixels(name: str) -> PILImage.Image:
    """The RGB pixels of a file ingestion stored (name in default_storage)."""
    with default_storage.open(name, "rb") as handle:
        pixels = PILImage.open(handle)
        pixels.load()
    return pixels.convert("RGB")


def read_synthetic_marker(data: bytes) -> dict[str, str]:
    """The Atlas text chunks of a stored PNG (empty for real photographs)."""
    with PILImage.open(io.BytesIO(data)) as opened:
        text = getattr(opened, "text", {}) or {}
        return {key: value for key, value in text.items() if key.startswith("Atlas-")}


# --- storage and follow-ups -----------------------------------------------------------------


def _delete_files(names: Iterable[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("could not remove %s after a failed ingestion", name)


def enqueue_after_ingest(image_id: int) -> None:
    for dotted in settings.ATLAS_AFTER_INGEST_TASKS:
        try:
            import_string(dotted).delay(image_id)
        except Exception:  # a broker outage must not undo a committed ingestion
            logger.exception("could not enqueue %s for image %s", dotted, image_id)
