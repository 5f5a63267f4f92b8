"""The search page, search by photo, and the search parts of image detail.

The tiny random open_clip checkpoint and the image factory come from tests/search (reused,
not copied). Ranking by a random model is arbitrary, so these tests assert what filters,
badges, pagination and failure modes do, never an order the model chose.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from atlas.models import Image
from search import indexing, query
from search.models import ImageEmbedding
from tests.conftest import make_image_bytes
from tests.search.conftest import add_image, search_settings, tiny_checkpoint  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

SEARCH = reverse("atlas:search")
PHOTO = reverse("atlas:search_photo")
PROVENANCE = {"model": "dermgan-test", "checkpoint": "ckpt-42.pt", "seed": 4242, "job": 7, "map": {"skin_type": 6}}


@pytest.fixture
def catalogue(add_image):  # noqa: F811
    """Tinea on II and V, melanoma on II and V, one synthetic melanoma on VI."""
    images = {
        "tinea-2": add_image("tinea", skin_type=2),
        "tinea-5": add_image("tinea", skin_type=5),
        "melanoma-2": add_image("melanoma", skin_type=2),
        "melanoma-5": add_image("melanoma", skin_type=5),
        "melanoma-6-syn": add_image("melanoma", skin_type=6, origin="synthetic"),
    }
    Image.objects.filter(pk=images["melanoma-6-syn"].pk).update(provenance=PROVENANCE)
    return images


@pytest.fixture
def indexed(search_settings, catalogue):  # noqa: F811
    indexing.index_rebuild()
    return catalogue


@pytest.fixture
def no_model(settings, tmp_path):
    settings.SEARCH_CLIP_MODEL = "atlas-clip-tiny"
    settings.SEARCH_CLIP_PRETRAINED = str(tmp_path / "no-such-checkpoint.pt")
    settings.SEARCH_INDEX_DIR = tmp_path / "no-index"
    query.reset_caches()
    yield
    query.reset_caches()


def shown(response) -> set[str]:
    """Public ids of the images a page links to (thumbnails link to their detail page)."""
    return {
        image.public_id.hex
        for image in Image.objects.all()
        if f'href="{reverse("atlas:image_detail", args=[image.public_id])}"' in response.text
    }


def ids(*images) -> set[str]:
    return {image.public_id.hex for image in images}


def jpeg_with_metadata() -> bytes:
    """A photo whose EXIF names a person and a place: none of it may be kept or echoed."""
    exif = PILImage.Exif()
    exif[0x013B] = "Jane Patient"  # Artist
    exif[0x010F] = "SecretCam"  # Make
    buffer = io.BytesIO()
    PILImage.new("RGB", (80, 60), (150, 90, 70)).save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def upload(data: bytes, name: str = "jane-patient-at-home.jpg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


# --- browsing the catalogue (no model needed) ---------------------------------------------


def test_the_condition_picker_understands_lay_synonyms(client, catalogue):
    response = client.get(SEARCH, {"condition": "Ringworm"})
    assert response.status_code == 200
    assert shown(response) == ids(catalogue["tinea-2"], catalogue["tinea-5"])
    assert "is another name for" in response.text and ">Tinea</a>" in response.text


def test_the_picker_offers_names_and_synonyms_for_typeahead(client, db):
    page = client.get(SEARCH).text
    assert 'id="condition-data" type="application/json"' in page and '"ringworm"' in page
    assert '<option value="ringworm" label="ringworm &rarr; Tinea">' in page  # the no-JS datalist


def test_skin_type_swatches_are_labelled_checkboxes(client, db):
    page = client.get(SEARCH, {"fitzpatrick": ["5", "6"]}).text
    for number, numeral in ((5, "V"), (6, "VI")):
        box = page.split(f'value="{number}"')[1].split(">")[0]
        assert "checked" in box
        assert f"Type {numeral}</span></label>" in page
    assert page.count('type="checkbox" name="fitzpatrick"') == 7  # I-VI and unknown


def test_filters_combine_and_the_default_is_real_and_synthetic(client, catalogue):
    both = client.get(SEARCH, {"condition": "melanoma", "fitzpatrick": ["5", "6"]})
    assert shown(both) == ids(catalogue["melanoma-5"], catalogue["melanoma-6-syn"])
    assert re.search(r'<input type="radio" name="origin" value="" [^>]*checked', both.text)
    real = client.get(SEARCH, {"condition": "melanoma", "fitzpatrick": ["5", "6"], "origin": "real"})
    assert shown(real) == ids(catalogue["melanoma-5"])


def test_synthetic_results_always_carry_the_badge(client, catalogue):
    page = client.get(SEARCH, {"origin": "synthetic"}).text
    thumb = page.split(str(catalogue["melanoma-6-syn"].public_id))[1].split("</figure>")[0]
    assert '<span class="badge badge-synthetic thumb-badge">Synthetic</span>' in thumb


def test_pages_keep_the_whole_query_in_the_url(client, catalogue, monkeypatch):
    monkeypatch.setattr("atlas.web.views.PAGE_SIZE", 1)
    page = client.get(SEARCH, {"condition": "tinea", "fitzpatrick": ["2", "5"], "origin": "real"}).text
    assert "?condition=tinea&amp;fitzpatrick=2&amp;fitzpatrick=5&amp;origin=real&amp;page=2" in page


def test_an_unknown_condition_is_a_clear_400(client, catalogue):
    response = client.get(SEARCH, {"condition": "dragon scale"})
    assert response.status_code == 400 and "No condition is called \u201cdragon scale\u201d" in response.text
    assert not shown(response)


def test_old_browse_links_redirect_to_search_with_their_query(client, db):
    response = client.get(reverse("atlas:image_list"), {"condition": "melanoma", "fitzpatrick": "5"})
    assert response.status_code == 301 and response["Location"] == f"{SEARCH}?condition=melanoma&fitzpatrick=5"


# --- text search ----------------------------------------------------------------------------


def in_order(response) -> list[str]:
    """Public ids of the linked images, in the order the page shows them."""
    found = []
    for image in Image.objects.all():
        at = response.text.find(f'href="{reverse("atlas:image_detail", args=[image.public_id])}"')
        if at >= 0:
            found.append((at, image.public_id.hex))
    return [hex_id for _, hex_id in sorted(found)]


def test_text_search_ranks_the_condition_it_names_first(client, indexed):
    response = client.get(SEARCH, {"q": "ringworm on the arm"})
    assert response.status_code == 200
    order = in_order(response)
    assert set(order[:2]) == ids(indexed["tinea-2"], indexed["tinea-5"]) and len(order) == 5  # nothing excluded
    assert "<mark>ringworm</mark>" in response.text and "Tinea</a> first" in response.text


def test_a_misspelt_condition_offers_a_link_to_the_corrected_query(client, indexed):
    response = client.get(SEARCH, {"q": "melanomma", "origin": "real"})
    assert response.status_code == 200
    assert 'Did you mean <a href="?q=melanoma&amp;origin=real&amp;page=1">melanoma</a>?' in response.text


def test_below_the_floor_the_page_says_no_confident_match_and_shows_the_closest_apart(client, indexed, settings):
    settings.SEARCH_FLOOR_TEXT = 0.999
    response = client.get(SEARCH, {"q": "nothing to do with skin: a red car"})
    assert response.status_code == 200
    assert "No confident match." in response.text and "The closest images anyway" in response.text
    assert 'class="grid grid-closest"' in response.text and len(shown(response)) == 5


def test_a_skin_type_without_the_condition_says_so_and_labels_the_nearest(client, indexed):
    response = client.get(SEARCH, {"q": "tinea on type VI skin"})
    assert "no images of Tinea on skin type VI yet" in response.text
    assert "<strong>type V</strong>" in response.text
    assert in_order(response)[0] == indexed["tinea-5"].public_id.hex


def test_a_query_of_only_a_skin_type_says_so(client, indexed):
    response = client.get(SEARCH, {"q": "type V"})
    assert response.status_code == 200 and "Your words name only a skin type" in response.text


@pytest.mark.parametrize("text", ["the of and", "melanoma\x00", "x" * 600])
def test_bad_words_are_a_clear_400(client, indexed, text):
    response = client.get(SEARCH, {"q": text})
    assert response.status_code == 400 and 'class="error" id="q-error"' in response.text


def test_a_source_or_licence_that_selects_nothing_is_a_clear_400(client, indexed):
    response = client.get(SEARCH, {"q": "skin", "source": "no-such-source"})
    assert response.status_code == 400 and "unknown source" in response.text


def test_text_search_applies_the_swatches_and_origin(client, indexed):
    response = client.get(SEARCH, {"q": "a lesion", "fitzpatrick": ["6"], "origin": "synthetic"})
    assert shown(response) == ids(indexed["melanoma-6-syn"])
    assert "badge-synthetic thumb-badge" in response.text


def test_text_search_pages_through_the_ranking(client, indexed, monkeypatch):
    monkeypatch.setattr("atlas.web.views.PAGE_SIZE", 2)
    first = client.get(SEARCH, {"q": "skin"})
    second = client.get(SEARCH, {"q": "skin", "page": 2})
    third = client.get(SEARCH, {"q": "skin", "page": 3})
    pages = [shown(first), shown(second), shown(third)]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert set.union(*pages) == ids(*indexed.values())
    assert "?q=skin&amp;page=2" in first.text and "Page 1 of 3" in first.text
    assert all("(5 images)" in page.text for page in (first, second, third))  # the same total on every page


def test_the_total_is_the_same_on_every_page_while_an_image_awaits_indexing(client, indexed, add_image, monkeypatch):  # noqa: F811
    monkeypatch.setattr("atlas.web.views.PAGE_SIZE", 2)
    add_image("acne", skin_type=3)  # visible, not in the index yet
    pages = [client.get(SEARCH, {"q": "skin", "page": n}) for n in (1, 2, 3)]
    assert all("Page {} of 3 <span class=\"muted\">(5 images)</span>".format(n) in p.text for n, p in zip((1, 2, 3), pages, strict=True))


def test_unknown_skin_type_cannot_be_searched_by_text(client, indexed):
    response = client.get(SEARCH, {"q": "skin", "fitzpatrick": "unknown"})
    assert response.status_code == 400 and "can be browsed, not searched" in response.text


@pytest.mark.parametrize("like", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_more_like_this_of_no_public_image_is_a_clear_400(client, catalogue, like):
    response = client.get(SEARCH, {"like": like})
    assert response.status_code == 400 and "needs an image of the public atlas" in response.text


def test_more_like_this_leaves_the_image_out(client, indexed):
    image = indexed["melanoma-2"]
    response = client.get(SEARCH, {"like": str(image.public_id)})
    assert response.status_code == 200
    assert shown(response) == ids(*indexed.values()) - ids(image)
    assert "Images like this melanoma image" in response.text


# --- search unavailable: clear page, catalogue filtering still works ---------------------------


def test_without_a_model_text_search_says_so_and_still_ranks_named_conditions_first(client, catalogue, no_model):
    response = client.get(SEARCH, {"q": "ringworm on dark skin"})
    assert response.status_code == 503
    assert "Search by words is not available yet" in response.text
    # the condition named in the words still comes first, from the catalogue (tinea V: both named)
    order = in_order(response)
    assert order[:2] == [catalogue["tinea-5"].public_id.hex, catalogue["tinea-2"].public_id.hex] and len(order) == 5


def test_without_a_model_plain_filtering_is_unaffected(client, catalogue, no_model):
    response = client.get(SEARCH, {"condition": "ringworm", "fitzpatrick": "5"})
    assert response.status_code == 200 and shown(response) == ids(catalogue["tinea-5"])
    assert "not available" not in response.text


def test_without_a_model_detail_pages_still_render(client, catalogue, no_model):
    response = client.get(reverse("atlas:image_detail", args=[catalogue["tinea-2"].public_id]))
    assert response.status_code == 200
    assert "Similar images appear here once the search model" in response.text


# --- search by photo ------------------------------------------------------------------------


def test_a_photo_search_shows_similar_images_and_stores_nothing(client, indexed, media_root, caplog):
    before_files = files_under(media_root)
    counts = (Image.objects.count(), ImageEmbedding.objects.count())
    caplog.set_level(logging.DEBUG)
    response = client.post(PHOTO, {"photo": upload(jpeg_with_metadata()), "fitzpatrick": ["2", "5"]})
    assert response.status_code == 200
    assert shown(response) == ids(indexed["tinea-2"], indexed["tinea-5"], indexed["melanoma-2"], indexed["melanoma-5"])
    assert files_under(media_root) == before_files
    assert (Image.objects.count(), ImageEmbedding.objects.count()) == counts
    for secret in ("Jane Patient", "SecretCam", "jane-patient-at-home"):
        assert secret not in caplog.text and secret not in response.text
    assert "no-store" in response["Cache-Control"]


def test_a_big_photo_never_touches_the_disk(client, indexed, settings, monkeypatch):
    # Django spools uploads over 2.5 MB to a temporary file (deleted when the request ends, so
    # an empty spool directory afterwards proves nothing); the photo handler keeps them in memory.
    from django.core.files import uploadhandler
    spooled = []
    real = uploadhandler.TemporaryUploadedFile
    monkeypatch.setattr(uploadhandler, "TemporaryUploadedFile", lambda *a, **kw: spooled.append(a) or real(*a, **kw))
    noise = np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(noise).save(buffer, format="PNG", compress_level=0)
    assert buffer.tell() > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    response = client.post(PHOTO, {"photo": upload(buffer.getvalue(), "big.png")})
    assert response.status_code == 200 and len(shown(response)) == 5
    assert spooled == []


@pytest.mark.parametrize("data", [b"%PDF-1.4 not a photo", b""])
def test_a_file_that_is_not_a_photo_is_a_clear_400(client, indexed, data, media_root):
    before = files_under(media_root)
    response = client.post(PHOTO, {"photo": upload(data, "notes.pdf")})
    assert response.status_code == 400
    assert "cannot be searched" in response.text or "The submitted file is empty" in response.text
    assert files_under(media_root) == before


def test_a_photo_over_the_limit_is_refused_before_it_is_read(client, indexed, settings):
    settings.ATLAS_MAX_UPLOAD_BYTES = 1024
    response = client.post(PHOTO, {"photo": upload(make_image_bytes(400, 400, fmt="PNG", compress_level=0))})
    assert response.status_code == 413 and "larger than" in response.text


def test_a_photo_search_needs_the_csrf_token(indexed):
    response = Client(enforce_csrf_checks=True).post(PHOTO, {"photo": upload(jpeg_with_metadata())})
    assert response.status_code == 403


def test_without_a_model_a_photo_search_says_so(client, catalogue, no_model):
    response = client.post(PHOTO, {"photo": upload(jpeg_with_metadata()), "condition": "tinea"})
    assert response.status_code == 503 and "Search by photo is not available yet" in response.text
    assert shown(response) == ids(catalogue["tinea-2"], catalogue["tinea-5"])


def test_get_on_the_photo_address_goes_to_the_search_page(client, db):
    response = client.get(PHOTO)
    assert response.status_code == 302 and response["Location"] == f"{SEARCH}#photo"


# --- image detail ---------------------------------------------------------------------------


def test_detail_shows_similar_images_and_a_link_to_more(client, indexed):
    image = indexed["tinea-2"]
    page = client.get(reverse("atlas:image_detail", args=[image.public_id])).text
    similar = page.split('id="similar-heading"')[1]
    assert similar.count('<figure class="thumb') == 4 and str(image.public_id) not in similar.split("?like=")[0]
    assert f"{SEARCH}?like={image.public_id}" in similar


def test_synthetic_detail_names_the_provenance_fields(client, catalogue):
    page = client.get(reverse("atlas:image_detail", args=[catalogue["melanoma-6-syn"].public_id])).text
    provenance = page.split('class="facts provenance"')[1].split("</dl>")[0]
    labels = ["Model", "Checkpoint", "Semantic map parameters", "Seed", "Generation job"]
    positions = [provenance.index(f"<dt>{label}</dt>") for label in labels]
    assert positions == sorted(positions)
    assert "the type it was generated for" in page


def test_staff_can_follow_a_synthetic_image_to_its_generation_job(client, admin_client, catalogue):
    url = reverse("atlas:image_detail", args=[catalogue["melanoma-6-syn"].public_id])
    job = reverse("generation:job_detail", args=[7])
    assert f'href="{job}"' in admin_client.get(url).text
    assert f'href="{job}"' not in client.get(url).text


# --- condition pages ------------------------------------------------------------------------


def test_the_condition_description_from_the_admin_is_rendered_safely(client, catalogue):
    from atlas.models import Condition

    Condition.objects.filter(slug="tinea").update(description="A fungal infection.\n\nRing-shaped <script>x</script>")
    page = client.get(reverse("atlas:condition_detail", args=["tinea"])).text
    assert "<p>A fungal infection.</p>" in page and "&lt;script&gt;" in page and "<script>x" not in page


def test_staff_get_a_gap_filling_link_for_the_conditions_empty_skin_types(client, admin_client, catalogue):
    url = reverse("atlas:condition_detail", args=["melanoma"])
    plan = f'{reverse("generation:fill_gaps")}?conditions=melanoma&amp;skin_types=1&amp;skin_types=3&amp;skin_types=4&amp;target=10'
    assert plan in admin_client.get(url).text
    assert "Plan gap filling" not in client.get(url).text
