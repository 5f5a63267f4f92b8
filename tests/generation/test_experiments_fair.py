"""Fair reader studies: real and synthetic items matched per condition and skin type, a warning
(and an offer to restrict the types) when synthetic images sit on types without real ones,
only public / approved images, and study images that all leave with the same bytes count and
headers, so a size threshold cannot tell real from synthetic."""

from __future__ import annotations

import io
import struct
from collections import Counter

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from atlas.models import Condition, Image
from atlas.services.image_files import image_visibility_set
from atlas.services.ingestion import image_ingest
from atlas.skin import roman
from generation.experiments import blinding
from generation.experiments import reader_studies as svc
from generation.models import ReaderStudy
from tests.conftest import approved

_seeds = iter(range(10_000))


def _photo(*, synthetic: bool) -> bytes:
    """Real: a large, noisy JPEG (big file); synthetic: a small, smooth PNG (small file), as in
    the demo atlas, where the stored sizes alone separate the two."""
    rng = np.random.default_rng(next(_seeds))
    if synthetic:
        pixels = np.full((64, 64, 3), rng.integers(60, 200, 3), dtype=np.uint8)
        pixels[20:40, 20:40] = rng.integers(0, 256, 3)
        fmt, kwargs = "PNG", {}
    else:
        pixels = rng.integers(0, 256, (320, 320, 3), dtype=np.uint8)
        fmt, kwargs = "JPEG", {"quality": 95}
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _add(source, slug: str, skin: int, *, synthetic: bool, review: bool = True) -> Image:
    image = image_ingest(
        file=_photo(synthetic=synthetic), condition=Condition.objects.get(slug=slug), source=source,
        fitzpatrick_type=skin, origin=Image.Origin.SYNTHETIC if synthetic else Image.Origin.REAL,
        enqueue_followups=False, provenance={"model": "DermGAN", "checkpoint": "test@1"} if synthetic else None,
    ).image
    return approved(image) if review else image


@pytest.fixture
def skewed(source):
    """Melanoma: real on I-III, synthetic on II, III and V (V has no real melanoma).
    Psoriasis: real and synthetic on II and V."""
    for skin, n in ((1, 2), (2, 3), (3, 2)):
        for _ in range(n):
            _add(source, "melanoma", skin, synthetic=False)
    for skin, n in ((2, 2), (3, 1), (5, 3)):
        for _ in range(n):
            _add(source, "melanoma", skin, synthetic=True)
    for skin in (2, 5):
        for synthetic in (False, True):
            for _ in range(2):
                _add(source, "psoriasis", skin, synthetic=synthetic)


def _cells(study: ReaderStudy) -> Counter:
    return Counter((i.condition.slug, i.skin_type, i.is_real) for i in study.items.select_related("condition"))


def _assert_matched(study: ReaderStudy) -> None:
    cells = _cells(study)
    for (slug, skin, is_real), n in cells.items():
        assert cells[(slug, skin, not is_real)] == n, (slug, skin)


def test_unmatched_synthetic_images_are_refused_with_a_warning_and_an_offer(skewed):
    with pytest.raises(svc.StudyUnmatched) as refused:
        svc.reader_study_create(name="Skewed", per_condition=3, seed=1)
    plan = refused.value.plan
    assert [c.slug for c in plan.unmatched] == ["melanoma"] and plan.unmatched[0].unmatched == [5]
    assert "Melanoma: synthetic images on type V have no real images on the same type (real images on: I, II, III)." \
        in plan.warnings()
    assert plan.restrict_to == [2, 3]  # V is matched for psoriasis but not for melanoma
    assert "restrict the study to types II, III" in str(refused.value)
    assert not ReaderStudy.objects.exists()


def test_leaving_unmatched_images_out_draws_matched_pairs_per_condition_and_type(skewed):
    study = svc.reader_study_create(name="Fair", per_condition=3, seed=1, unmatched=svc.Unmatched.LEAVE_OUT)
    _assert_matched(study)
    cells = _cells(study)
    assert (("melanoma", 5, False) not in cells) and sum(n for (s, _, r), n in cells.items() if s == "melanoma" and r) == 3
    assert cells[("psoriasis", 5, True)] == cells[("psoriasis", 5, False)] >= 1
    # Skin type tells nothing: for every type, the share of real items is one half.
    by_type = Counter((i.skin_type, i.is_real) for i in study.items.all())
    assert all(by_type[(t, True)] == by_type[(t, False)] for t, _ in by_type)


def test_restricting_types_removes_the_warning(skewed):
    study = svc.reader_study_create(name="Restricted", per_condition=3, seed=1, unmatched=svc.Unmatched.RESTRICT)
    assert study.skin_types == [2, 3]
    assert {i.skin_type for i in study.items.all()} == {2, 3}
    _assert_matched(study)
    assert svc.realism_plan(skin_types=[2, 3]).unmatched == []  # the restricted study would not warn again


def test_real_and_synthetic_on_disjoint_types_cannot_be_restricted(source):
    # The case from the issue: real melanoma only on I-IV, synthetic only on V-VI.
    for skin in (1, 2, 3, 4):
        _add(source, "melanoma", skin, synthetic=False)
    for skin in (5, 6):
        _add(source, "melanoma", skin, synthetic=True)
    with pytest.raises(svc.StudyUnmatched, match="Restricting skin types would not help") as refused:
        svc.reader_study_create(name="Melanoma", per_condition=2, conditions=["melanoma"])
    assert refused.value.plan.restrict_to == []
    with pytest.raises(svc.StudyError, match="no skin type"):
        svc.reader_study_create(name="Melanoma", per_condition=2, unmatched=svc.Unmatched.RESTRICT)
    with pytest.raises(svc.StudyError, match="no images match"):
        svc.reader_study_create(name="Melanoma", per_condition=2, unmatched=svc.Unmatched.LEAVE_OUT)
    assert not ReaderStudy.objects.exists()


def test_studies_draw_only_public_images_and_stop_showing_hidden_ones(source):
    real = [_add(source, "acne", 3, synthetic=False) for _ in range(3)]
    synthetic = [_add(source, "acne", 3, synthetic=True) for _ in range(2)]
    pending = _add(source, "acne", 3, synthetic=True, review=False)  # not approved: never drawn
    hidden = _add(source, "acne", 3, synthetic=False)
    image_visibility_set(image=hidden, is_public=False)
    study = svc.reader_study_create(name="Acne", per_condition=5, seed=3)
    drawn = set(study.items.values_list("image_id", flat=True))
    assert len(drawn) == 4 and {i.pk for i in synthetic} <= drawn <= {i.pk for i in real + synthetic}
    assert pending.pk not in drawn and hidden.pk not in drawn
    # A curator hides a drawn image: readers no longer get it, its file is not served.
    item = study.items.filter(is_real=False).first()
    image_visibility_set(image=item.image, is_public=False)
    [(invite, _)] = svc.study_invites_create(study=study, links=1)
    assert svc.study_progress(invite=invite) == (0, 3)
    staff = Client()
    staff.force_login(get_user_model().objects.create_user("curator", is_staff=True))
    assert staff.get(reverse("generation:experiments:item_image", args=[item.token])).status_code == 404
    with pytest.raises(svc.StudyError, match="not part of this study"):
        svc.reader_answer_record(invite=invite, item_token=item.token, judged_real=True, shows_condition=True)


def _best_threshold_accuracy(sizes: list[int], is_real: list[bool]) -> float:
    """The best balanced accuracy any rule 'size above t means real' (or below) reaches."""
    best = 0.0
    for t in sorted(set(sizes)) + [max(sizes) + 1]:
        above = [s >= t for s in sizes]
        tpr = sum(a for a, r in zip(above, is_real) if r) / sum(is_real)
        tnr = sum(not a for a, r in zip(above, is_real) if not r) / (len(is_real) - sum(is_real))
        best = max(best, (tpr + tnr) / 2, 1 - (tpr + tnr) / 2)
    return best


def test_a_size_threshold_cannot_separate_real_from_synthetic_items(skewed):
    study = svc.reader_study_create(name="Sizes", per_condition=3, seed=2, unmatched=svc.Unmatched.LEAVE_OUT)
    items = list(study.items.select_related("image"))
    truth = [i.is_real for i in items]
    stored = [i.image.file.size for i in items]
    assert _best_threshold_accuracy(stored, truth) == 1.0  # the stored files alone give it away
    staff = Client()
    staff.force_login(get_user_model().objects.create_user("curator", is_staff=True))
    responses = [staff.get(reverse("generation:experiments:item_image", args=[i.token])) for i in items]
    served = [len(r.content) for r in responses]
    assert _best_threshold_accuracy(served, truth) == 0.5
    assert {int(r["Content-Length"]) for r in responses} == {blinding.STUDY_IMAGE_BYTES} == set(served)

    def headers(response) -> dict:
        return {k: (v if k != "ETag" else len(v)) for k, v in response.headers.items()}

    assert len({tuple(sorted(headers(r).items())) for r in responses}) == 1  # same headers, same ETag style
    assert "Last-Modified" not in responses[0] and responses[0]["Content-Type"] == "image/png"
    assert len({r["ETag"] for r in responses}) == len(responses)


def _chunks(data: bytes) -> list[tuple[bytes, int]]:
    chunks, at = [], 8
    while at < len(data):
        length = struct.unpack(">I", data[at:at + 4])[0]
        chunks.append((data[at + 4:at + 8], length))
        at += 12 + length
    return chunks


def test_fixed_length_png_keeps_the_pixels_and_pads_with_one_ancillary_chunk():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)  # the least compressible picture
    flat = np.full((256, 256, 3), 128, dtype=np.uint8)
    out = {name: blinding.fixed_length_png(pixels, seed=name) for name, pixels in (("noise", noise), ("flat", flat))}
    assert {len(data) for data in out.values()} == {blinding.STUDY_IMAGE_BYTES}
    for name, pixels in (("noise", noise), ("flat", flat)):
        with PILImage.open(io.BytesIO(out[name])) as decoded:
            assert np.array_equal(np.asarray(decoded.convert("RGB")), pixels) and decoded.info == {}
        kinds = [kind for kind, _ in _chunks(out[name])]
        assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and kinds.count(blinding.PAD_CHUNK) == 1
        assert kinds[-2] == blinding.PAD_CHUNK and blinding.PAD_CHUNK[0:1].islower()  # ancillary: decoders skip it
    raw = io.BytesIO()
    PILImage.fromarray(noise).save(raw, format="PNG")
    assert len(raw.getvalue()) <= blinding.png_worst_case_bytes()
    assert blinding.fixed_length_png(noise, seed="a") == blinding.fixed_length_png(noise, seed="a")  # stable ETag
    with pytest.raises(blinding.BlindingError):
        blinding.fixed_length_png(noise, length=100_000)


def test_study_page_warns_and_offers_to_restrict_types(skewed):
    staff = Client()
    staff.force_login(get_user_model().objects.create_user("curator", is_staff=True))
    url = reverse("generation:experiments:study_list")
    form = {"name": "Web", "kind": "realism", "per_condition": 2, "seed": 4}
    page = staff.post(url, form).content.decode()
    assert "Skin tone would give the answer away" in page and "synthetic images on type V" in page
    assert 'value="restrict">Restrict to types II, III</button>' in page and not ReaderStudy.objects.exists()
    response = staff.post(url, {**form, "unmatched": "restrict"})
    study = ReaderStudy.objects.get()
    assert response.status_code == 302 and study.skin_types == [2, 3]
    detail = staff.get(reverse("generation:experiments:study_detail", args=[study.public_id])).content.decode()
    assert "Drawn images per condition and skin type" in detail
    for (slug, skin, _), n in _cells(study).items():
        name = Condition.objects.get(slug=slug).name
        assert f"<tr><td>{name}</td><td>{roman(skin)}</td><td>{n}</td><td>{n}</td></tr>" in detail
