"""The one ingestion path: every bad input is refused with a clear code and leaves nothing behind."""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections import Counter

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError
from PIL import Image as PILImage
from PIL import ImageCms

from atlas.models import Image, ImageQuerySet, Region
from atlas.services.ingestion import Box, IngestionError, image_ingest, image_sha256, read_synthetic_marker
from tests.conftest import make_image_bytes

pytestmark = pytest.mark.django_db


def stored_files(media_root) -> list:
    return sorted(p for p in media_root.rglob("*") if p.is_file())


def assert_nothing_stored(media_root) -> None:
    assert Image.objects.count() == 0
    assert Region.objects.count() == 0
    assert stored_files(media_root) == []


def refuse(media_root, code: str, **kwargs) -> IngestionError:
    with pytest.raises(IngestionError) as error:
        image_ingest(**kwargs)
    assert error.value.code == code, error.value.message
    assert_nothing_stored(media_root)
    return error.value


def read_stored(image: Image) -> bytes:
    with default_storage.open(image.file.name, "rb") as handle:
        return handle.read()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels; the pixel data is never there."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def noisy_jpeg(width: int = 256, height: int = 256, **save_kwargs) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="JPEG", quality=90, **save_kwargs)
    return buffer.getvalue()


def exif_with_gps(orientation: int | None = None) -> bytes:
    exif = PILImage.Exif()
    exif[0x010F] = "CameraMakerXYZ"  # Make
    exif[0x013B] = "Dr Jane Example"  # Artist
    if orientation:
        exif[0x0112] = orientation
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 12.0), 3: "W", 4: (0.0, 7.0, 39.0)}  # GPS IFD
    return exif.tobytes()


# --- content sniffing -----------------------------------------------------------------------

FAKE_IMAGES = {
    "html": b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
    "svg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    "pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    "gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
}


@pytest.mark.parametrize("kind", sorted(FAKE_IMAGES))
def test_it_refuses_other_content_renamed_jpg(kind, source, melanoma, media_root):
    upload = SimpleUploadedFile("photo.jpg", FAKE_IMAGES[kind], content_type="image/jpeg")
    error = refuse(media_root, "not_an_image", file=upload, condition=melanoma, source=source)
    assert "content was checked" in error.message


def test_it_refuses_a_zero_byte_file(source, melanoma, media_root):
    refuse(media_root, "empty_file", file=SimpleUploadedFile("empty.jpg", b""), condition=melanoma, source=source)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_it_refuses_a_truncated_jpeg(keep, source, melanoma, media_root):
    data = noisy_jpeg()
    refuse(media_root, "corrupt", file=data[: int(len(data) * keep)], condition=melanoma, source=source)


def test_it_accepts_a_png_named_jpg_and_stores_it_as_png(source, melanoma):
    upload = SimpleUploadedFile("photo.jpg", make_image_bytes(fmt="PNG"), content_type="image/jpeg")
    image = image_ingest(file=upload, condition=melanoma, source=source).image
    assert image.file.name.endswith(".png")
    assert read_stored(image).startswith(b"\x89PNG")


def test_webp_is_accepted_and_stored_as_jpeg(source, melanoma):
    image = image_ingest(file=make_image_bytes(fmt="WEBP", quality=95), condition=melanoma, source=source).image
    assert image.file.name.endswith(".jpg")
    assert read_stored(image)[:3] == b"\xff\xd8\xff"


# --- size and pixel limits ------------------------------------------------------------------


def test_a_png_declaring_30000_by_30000_pixels_is_refused_without_decoding(source, melanoma, media_root):
    data = png_declaring(30000, 30000)
    assert len(data) < 200  # the header alone: nothing like 2.7 GB of pixels exists
    refuse(media_root, "too_many_pixels", file=data, condition=melanoma, source=source)


def test_our_pixel_limit_applies_below_pillows_own(source, melanoma, media_root, settings):
    settings.ATLAS_MAX_IMAGE_PIXELS = 1_000_000
    error = refuse(media_root, "too_many_pixels", file=png_declaring(2000, 1000), condition=melanoma, source=source)
    assert "2000x1000" in error.message


def test_an_oversized_file_is_refused(source, melanoma, media_root, settings):
    settings.ATLAS_MAX_UPLOAD_BYTES = 4096
    data = noisy_jpeg(128, 128)
    assert len(data) > 4096
    error = refuse(media_root, "too_large", file=SimpleUploadedFile("big.jpg", data), condition=melanoma, source=source)
    assert "4,096 bytes" in error.message


def test_an_oversized_file_is_refused_as_bytes_too(source, melanoma, media_root, settings):
    settings.ATLAS_MAX_UPLOAD_BYTES = 4096
    refuse(media_root, "too_large", file=noisy_jpeg(128, 128), condition=melanoma, source=source)


# --- metadata stripping and orientation -----------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_gps_and_camera_exif_are_accepted_and_stripped(fmt, source, melanoma):
    buffer = io.BytesIO()
    PILImage.new("RGB", (40, 30), (190, 140, 110)).save(buffer, format=fmt, exif=exif_with_gps())
    with PILImage.open(io.BytesIO(buffer.getvalue())) as original:
        assert 0x8825 in original.getexif()  # the input really carries GPS

    image = image_ingest(file=buffer.getvalue(), condition=melanoma, source=source).image
    stored = read_stored(image)
    with PILImage.open(io.BytesIO(stored)) as result:
        assert dict(result.getexif()) == {}
        assert result.getexif().get_ifd(0x8825) == {}
        assert "exif" not in result.info
    assert b"CameraMakerXYZ" not in stored and b"Jane Example" not in stored


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_comments_and_xmp_do_not_survive(fmt, source, melanoma):
    buffer = io.BytesIO()
    extra = {"comment": b"patient Alice Smith"} if fmt == "JPEG" else {}
    PILImage.new("RGB", (40, 30), (190, 140, 110)).save(
        buffer, format=fmt, xmp=b"<x:xmpmeta>Alice Smith</x:xmpmeta>", **extra
    )
    image = image_ingest(file=buffer.getvalue(), condition=melanoma, source=source).image
    stored = read_stored(image)
    assert b"Alice Smith" not in stored
    with PILImage.open(io.BytesIO(stored)) as result:
        assert not {"comment", "xmp", "exif"} & set(result.info)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_colour_profiles_are_applied_then_dropped(fmt, source, melanoma):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    PILImage.new("RGB", (40, 30), (190, 140, 110)).save(buffer, format=fmt, icc_profile=srgb)
    image = image_ingest(file=buffer.getvalue(), condition=melanoma, source=source).image
    with PILImage.open(io.BytesIO(read_stored(image))) as result:
        assert "icc_profile" not in result.info
        assert max(abs(a - b) for a, b in zip(result.getpixel((5, 5)), (190, 140, 110))) <= 3


def test_exif_orientation_is_applied_before_stripping(source, melanoma):
    # Left half red, right half blue, tagged "rotate 90 degrees clockwise to display".
    pixels = PILImage.new("RGB", (80, 40), (220, 30, 30))
    pixels.paste((30, 30, 220), (40, 0, 80, 40))
    buffer = io.BytesIO()
    pixels.save(buffer, format="JPEG", quality=95, exif=exif_with_gps(orientation=6))

    result = image_ingest(
        file=buffer.getvalue(), condition=melanoma, source=source, regions=[Box(0, 50, 40, 30)]  # only fits upright
    )
    image = result.image
    assert (image.width, image.height) == (40, 80)
    with PILImage.open(io.BytesIO(read_stored(image))) as upright:
        assert upright.size == (40, 80)
        assert 0x0112 not in upright.getexif()
        top, bottom = upright.getpixel((20, 10)), upright.getpixel((20, 70))
    assert top[0] > 150 and top[2] < 100  # red now on top
    assert bottom[2] > 150 and bottom[0] < 100


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_broken_exif_never_escapes_as_a_crash():
    # Random damage to an EXIF block made Pillow raise TypeError / struct.error from
    # exif_transpose: a 500 in a view, a dead import in a command. The pixels are fine.
    rng = random.Random(1)
    base = PILImage.new("RGB", (32, 16), (100, 50, 20))
    outcomes = Counter()
    for _ in range(300):
        raw = bytearray(exif_with_gps(orientation=6))
        for _ in range(rng.randint(1, 8)):
            raw[rng.randrange(6, len(raw))] = rng.randrange(256)
        buffer = io.BytesIO()
        base.save(buffer, format="JPEG", exif=bytes(raw))
        try:
            image_sha256(buffer.getvalue())
            outcomes["accepted"] += 1
        except IngestionError as error:
            outcomes[error.code] += 1
    assert outcomes["accepted"] > 250, outcomes


def test_png_with_alpha_is_flattened_onto_white(source, melanoma):
    rgba = PILImage.new("RGBA", (32, 32), (0, 0, 0, 0))
    rgba.paste((120, 60, 40, 255), (0, 0, 16, 32))
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    image = image_ingest(file=buffer.getvalue(), condition=melanoma, source=source).image
    with PILImage.open(io.BytesIO(read_stored(image))) as stored:
        assert stored.mode == "RGB"
        assert stored.getpixel((4, 4)) == (120, 60, 40)
        assert stored.getpixel((28, 4)) == (255, 255, 255)


def test_sixteen_bit_greyscale_keeps_its_levels(source, melanoma):
    buffer = io.BytesIO()
    PILImage.fromarray(np.full((16, 16), 30000, dtype=np.uint16)).save(buffer, format="PNG")
    image = image_ingest(file=buffer.getvalue(), condition=melanoma, source=source).image
    with PILImage.open(io.BytesIO(read_stored(image))) as stored:
        assert stored.getpixel((0, 0)) == (117, 117, 117)  # 30000 >> 8, not clipped to white


def test_cmyk_jpeg_is_stored_as_rgb(source, melanoma):
    buffer = io.BytesIO()
    PILImage.new("CMYK", (24, 24), (0, 80, 120, 40)).save(buffer, format="JPEG")
    image = image_ingest(file=buffer.getvalue(), condition=melanoma, source=source).image
    with PILImage.open(io.BytesIO(read_stored(image))) as stored:
        assert stored.mode == "RGB"


# --- duplicates -----------------------------------------------------------------------------


def test_the_same_pixels_in_another_container_are_a_duplicate(source, melanoma, media_root):
    first = image_ingest(file=make_image_bytes(fmt="PNG", seed=3), condition=melanoma, source=source)
    files = stored_files(media_root)
    again = image_ingest(file=make_image_bytes(fmt="PNG", seed=3, compress_level=0), condition=melanoma, source=source)
    assert first.created and not again.created
    assert again.image.pk == first.image.pk and again.image.public_id == first.image.public_id
    assert Image.objects.count() == 1 and stored_files(media_root) == files


def test_a_duplicate_that_wins_a_race_stores_nothing(source, melanoma, media_root, monkeypatch):
    first = image_ingest(file=make_image_bytes(fmt="PNG", seed=4), condition=melanoma, source=source).image
    files = stored_files(media_root)
    real_first = ImageQuerySet.first
    calls = []

    def miss_once(queryset):  # the other writer commits just after our duplicate check
        calls.append(1)
        return None if len(calls) == 1 else real_first(queryset)

    monkeypatch.setattr(ImageQuerySet, "first", miss_once)
    again = image_ingest(file=make_image_bytes(fmt="PNG", seed=4), condition=melanoma, source=source)
    assert not again.created and again.image.pk == first.pk
    assert stored_files(media_root) == files and Image.objects.count() == 1


# --- regions --------------------------------------------------------------------------------

BAD_BOXES = {
    "past the right edge": (Box(60, 0, 10, 10), "region_outside"),
    "past the bottom edge": (Box(0, 40, 10, 9), "region_outside"),
    "negative origin": (Box(-1, 0, 5, 5), "region_outside"),
    "wider than the image": (Box(0, 0, 65, 48), "region_outside"),
    "zero width": (Box(0, 0, 0, 5), "empty_region"),
    "negative height": (Box(0, 0, 5, -1), "empty_region"),
    "fractional pixels": (Box(0.5, 0, 5, 5), "bad_region"),
}


@pytest.mark.parametrize("name", sorted(BAD_BOXES))
def test_bad_regions_are_refused(name, source, melanoma, media_root):
    box, code = BAD_BOXES[name]
    error = refuse(
        media_root, code, file=make_image_bytes(), condition=melanoma, source=source, regions=[Box(1, 1, 5, 5), box]
    )
    assert "region 2" in error.message


def test_a_box_touching_the_edges_is_inside(source, melanoma):
    image = image_ingest(file=make_image_bytes(), condition=melanoma, source=source, regions=[Box(0, 0, 64, 48)]).image
    assert list(image.regions.values_list("x", "y", "width", "height")) == [(0, 0, 64, 48)]


# --- labels ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"fitzpatrick_type": 7}, "bad_skin_type"),
        ({"fitzpatrick_type": 3, "fitzpatrick_label_source": "guess"}, "bad_label_source"),
        ({"monk_tone": 11}, "bad_monk_tone"),
        ({"origin": "imagined"}, "bad_origin"),
        ({"origin": Image.Origin.SYNTHETIC}, "missing_provenance"),
    ],
)
def test_bad_labels_are_refused(kwargs, code, source, melanoma, media_root):
    refuse(media_root, code, file=make_image_bytes(), condition=melanoma, source=source, **kwargs)


# --- transactions and files -----------------------------------------------------------------


@pytest.mark.parametrize("failure", [RuntimeError("database went away"), IntegrityError("constraint failed")])
def test_a_failing_insert_leaves_no_orphan_files(failure, source, melanoma, media_root, monkeypatch):
    def explode(*args, **kwargs):
        raise failure

    monkeypatch.setattr(Region.objects, "bulk_create", explode)
    with pytest.raises(type(failure)):
        image_ingest(file=make_image_bytes(), condition=melanoma, source=source, regions=[Box(1, 1, 5, 5)])
    assert_nothing_stored(media_root)


def test_a_failing_thumbnail_write_removes_the_main_file(source, melanoma, media_root, monkeypatch):
    real_save = default_storage.save

    def save(name, content, **kwargs):
        if name.startswith("thumbnails/"):
            raise OSError("disk full")
        return real_save(name, content, **kwargs)

    monkeypatch.setattr(default_storage, "save", save)
    with pytest.raises(OSError):
        image_ingest(file=make_image_bytes(), condition=melanoma, source=source)
    assert_nothing_stored(media_root)


class RecordingTask:
    calls: list[int] = []

    @classmethod
    def delay(cls, image_id: int) -> None:
        cls.calls.append(image_id)


def test_followups_are_enqueued_on_commit_only(source, melanoma, settings, django_capture_on_commit_callbacks):
    settings.ATLAS_AFTER_INGEST_TASKS = ["tests.atlas.test_ingestion.RecordingTask"]
    RecordingTask.calls = []
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        image = image_ingest(file=make_image_bytes(), condition=melanoma, source=source).image
        assert RecordingTask.calls == []
    assert len(callbacks) == 1 and RecordingTask.calls == [image.pk]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        image_ingest(file=make_image_bytes(), condition=melanoma, source=source)  # a duplicate
    assert callbacks == [] and RecordingTask.calls == [image.pk]


# --- synthetic images -----------------------------------------------------------------------


def test_a_synthetic_image_carries_its_marker_in_the_stored_png(source, melanoma):
    provenance = {"model": "dermgan", "checkpoint": "fast-0001.pt", "seed": 7}
    image = image_ingest(
        file=make_image_bytes(fmt="JPEG"), condition=melanoma, source=source,
        origin=Image.Origin.SYNTHETIC, provenance=provenance,
    ).image
    assert image.is_synthetic and image.provenance == provenance
    assert image.file.name.endswith(".png")  # even from a JPEG: PNG holds the text chunks
    marker = read_synthetic_marker(read_stored(image))
    assert marker["Atlas-Origin"] == "synthetic"
    assert marker["Atlas-Model"] == "dermgan" and marker["Atlas-Checkpoint"] == "fast-0001.pt"


def test_a_real_image_carries_no_marker(source, melanoma):
    image = image_ingest(file=make_image_bytes(fmt="PNG"), condition=melanoma, source=source).image
    assert read_synthetic_marker(read_stored(image)) == {}

