"""Condition teaching text (atlas/condition_content.py -> Condition rows): seeded by migration,
edited in the admin, shown on the condition page (with its strip across skin tones) and in the
API; the look-alike drill page and "often confused with" on image pages."""

from __future__ import annotations

import importlib
import re

import pytest
from django.apps import apps as django_apps
from django.urls import reverse

from atlas.condition_content import CONDITION_TEXT, EDUCATIONAL_NOTE
from atlas.models import Condition, Image
from atlas.services.conditions import condition_merge, conditions_for_unmapped_labels
from atlas.taxonomy import SEED_CONDITIONS
from search import query
from tests.search.conftest import add_image  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_model(settings, tmp_path):
    """No search model here: pages must work from the catalogue (tests/search cover the embedding)."""
    settings.SEARCH_CLIP_MODEL = "atlas-clip-tiny"
    settings.SEARCH_CLIP_PRETRAINED = str(tmp_path / "no-such-checkpoint.pt")
    settings.SEARCH_INDEX_DIR = tmp_path / "no-index"
    query.reset_caches()
    yield
    query.reset_caches()


# --- the content ----------------------------------------------------------------------------


def test_every_seeded_condition_has_teaching_text_in_the_database():
    assert set(CONDITION_TEXT) == {seed.slug for seed in SEED_CONDITIONS}
    for condition in Condition.objects.filter(slug__in=list(CONDITION_TEXT)):
        text = CONDITION_TEXT[condition.slug]
        for field in ("summary", "description", "appearance_light", "appearance_dark", "see_clinician"):
            assert getattr(condition, field).strip(), (condition.slug, field)
        assert condition.summary == text.summary and len(condition.summary) <= 300
        assert 2 <= len(condition.further_reading) <= 3, condition.slug
        assert all(ref["url"].startswith("https://") and ref["title"] for ref in condition.further_reading)
        assert set(condition.lookalikes.values_list("slug", flat=True)) == set(text.lookalikes), condition.slug
        assert condition.slug not in text.lookalikes


def test_the_dark_skin_text_speaks_of_colour_on_dark_skin():
    # Redness is the sign learners miss on dark skin: the inflammatory texts say what it looks like.
    for slug in ("eczema", "psoriasis", "allergic-contact-dermatitis", "tinea", "stasis-dermatitis"):
        assert re.search(r"violet|purple|grey|brown", Condition.objects.get(slug=slug).appearance_dark), slug


def test_the_seed_keeps_a_curators_edits_and_fills_what_is_empty():
    seed = importlib.import_module("atlas.migrations.0011_seed_condition_teaching_text").seed_teaching_text
    Condition.objects.filter(slug="melanoma").update(summary="A curator's own sentence.", appearance_dark="")
    Condition.objects.get(slug="tinea").lookalikes.clear()
    Condition.objects.get(slug="eczema").lookalikes.set([Condition.objects.get(slug="urticaria")])
    seed(django_apps, None)
    melanoma = Condition.objects.get(slug="melanoma")
    assert melanoma.summary == "A curator's own sentence." and melanoma.appearance_dark == CONDITION_TEXT["melanoma"].dark_skin
    assert set(Condition.objects.get(slug="tinea").lookalikes.values_list("slug", flat=True)) == set(CONDITION_TEXT["tinea"].lookalikes)
    assert list(Condition.objects.get(slug="eczema").lookalikes.values_list("slug", flat=True)) == ["urticaria"]


def test_a_merge_moves_lookalike_references_to_the_surviving_condition():
    pending = conditions_for_unmapped_labels(dataset="newset", labels=["naevus spilus"])["naevus spilus"]
    lentigo = Condition.objects.get(slug="lentigo")
    lentigo.lookalikes.add(pending)
    condition_merge(condition=pending, into=Condition.objects.get(slug="melanocytic-nevus"))
    assert "melanocytic-nevus" in lentigo.lookalikes.values_list("slug", flat=True)
    assert not Condition.objects.filter(slug=pending.slug).exists()


# --- admin ----------------------------------------------------------------------------------


def _change_post(condition: Condition, **fields) -> dict:
    post = {
        "slug": condition.slug, "name": condition.name, "category": condition.category, "synonyms": "\n".join(condition.synonyms),
        "summary": condition.summary, "description": condition.description, "appearance_light": condition.appearance_light,
        "appearance_dark": condition.appearance_dark, "see_clinician": condition.see_clinician,
        "lookalikes": [str(pk) for pk in condition.lookalikes.values_list("pk", flat=True)],
        "further_reading": "\n".join(f"{r['title']} | {r['url']}" for r in condition.further_reading),
        "label_mappings-TOTAL_FORMS": "0", "label_mappings-INITIAL_FORMS": "0",
        "label_mappings-MIN_NUM_FORMS": "0", "label_mappings-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    return post | fields


def test_the_admin_edits_the_teaching_text(admin_client):
    melanoma = Condition.objects.get(slug="melanoma")
    url = reverse("admin:atlas_condition_change", args=[melanoma.pk])
    page = admin_client.get(url).text
    assert "Teaching text" in page and "NHS: Melanoma skin cancer | https://www.nhs.uk/conditions/melanoma-skin-cancer/" in page
    vitiligo = Condition.objects.get(slug="vitiligo")
    post = _change_post(
        melanoma, summary="Edited.", lookalikes=[str(vitiligo.pk)], further_reading="A guide | https://example.org/guide\n\n"
    )
    assert admin_client.post(url, post).status_code == 302
    melanoma.refresh_from_db()
    assert melanoma.summary == "Edited." and melanoma.further_reading == [{"title": "A guide", "url": "https://example.org/guide"}]
    assert list(melanoma.lookalikes.values_list("slug", flat=True)) == ["vitiligo"]
    assert "Edited." in admin_client.get(reverse("atlas:condition_detail", args=["melanoma"])).text


@pytest.mark.parametrize("line, error", [
    ("https://example.org", "write a reference as title | https://address"),
    ("Guide | http://example.org", "is not an https address"),
    ("Guide | javascript:alert(1)", "is not an https address"),
])  # fmt: skip
def test_the_admin_refuses_a_bad_reference_and_changes_nothing(admin_client, line, error):
    melanoma = Condition.objects.get(slug="melanoma")
    before = melanoma.further_reading
    response = admin_client.post(reverse("admin:atlas_condition_change", args=[melanoma.pk]), _change_post(melanoma, summary="X", further_reading=line))
    assert response.status_code == 200 and error in response.text
    melanoma.refresh_from_db()
    assert melanoma.further_reading == before and melanoma.summary != "X"


def test_a_condition_cannot_be_its_own_lookalike_in_the_admin(admin_client):
    melanoma = Condition.objects.get(slug="melanoma")
    response = admin_client.post(reverse("admin:atlas_condition_change", args=[melanoma.pk]), _change_post(melanoma, lookalikes=[str(melanoma.pk)]))
    assert response.status_code == 200 and "Select a valid choice" in response.text


# --- API ------------------------------------------------------------------------------------


def test_the_api_condition_carries_its_teaching_text(client):
    body = client.get("/api/v1/conditions/psoriasis/").json()
    text = CONDITION_TEXT["psoriasis"]
    assert body["summary"] == text.summary and body["description"] == text.about
    assert body["appearance_light"] == text.light_skin and body["appearance_dark"] == text.dark_skin
    assert body["lookalikes"] == sorted(text.lookalikes) and body["see_clinician"] == text.see_clinician
    assert body["further_reading"] == [{"title": t, "url": u} for t, u in text.reading]
    assert body["educational_note"] == EDUCATIONAL_NOTE and "not a diagnosis" in body["educational_note"]
    listed = next(c for c in client.get("/api/v1/conditions/").json() if c["slug"] == "psoriasis")
    assert listed["summary"] == text.summary and "appearance_dark" not in listed  # the list stays light


def test_the_openapi_schema_describes_the_teaching_text(client):
    schema = client.get("/api/schema/?format=json").json()
    detail = schema["components"]["schemas"]["ConditionDetail"]["properties"]
    assert {"summary", "appearance_light", "appearance_dark", "lookalikes", "see_clinician", "further_reading", "educational_note"} <= set(detail)
    assert detail["lookalikes"]["type"] == "array"
    operation = schema["paths"]["/api/v1/conditions/{slug}/"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ConditionDetail")


# --- the condition page ---------------------------------------------------------------------


def strip_cells(html: str) -> dict[int, str]:
    """The strip's cells by skin type: each <li> of the strip."""
    strip = html.split("data-tone-strip", 1)[1].split("</ol>", 1)[0]
    return {int(n): cell for n, cell in re.findall(r'data-skin-type="(\d)">(.*?)</li>', strip, flags=re.S)}


def test_the_condition_page_shows_the_text_and_says_it_is_not_diagnostic(client):
    html = client.get(reverse("atlas:condition_detail", args=["eczema"])).text
    text = CONDITION_TEXT["eczema"]
    for part in (text.summary, text.light_skin, text.see_clinician, "On darker skin (types IV-VI)", "For learning, not diagnosis"):
        assert part in html.replace("&#x27;", "'"), part
    for title, url in text.reading:
        assert f'href="{url}"' in html
    for slug in text.lookalikes:
        assert f'href="{reverse("atlas:condition_detail", args=[slug])}"' in html
    assert reverse("atlas:condition_drill", args=["eczema"]) in html


def test_the_condition_page_without_lookalikes_says_so(client):
    html = client.get(reverse("atlas:condition_detail", args=["other"])).text
    assert "No look-alikes are listed for Other" in html and reverse("atlas:condition_drill", args=["other"]) not in html


def test_the_strip_shows_one_public_image_per_skin_type_real_first(client, add_image):  # noqa: F811
    synthetic_1 = add_image("melanoma", skin_type=1, origin="synthetic")
    real_1 = add_image("melanoma", skin_type=1)
    synthetic_2 = add_image("melanoma", skin_type=2, origin="synthetic")
    pending_3 = add_image("melanoma", skin_type=3, origin="synthetic", reviewed=False)
    hidden_4 = add_image("melanoma", skin_type=4, is_public=False)
    real_6 = add_image("melanoma", skin_type=6)
    cells = strip_cells(client.get(reverse("atlas:condition_detail", args=["melanoma"])).text)
    assert sorted(cells) == [1, 2, 3, 4, 5, 6]
    assert real_1.thumbnail.url in cells[1] and synthetic_1.thumbnail.url not in cells[1] and "Synthetic" not in cells[1]
    assert synthetic_2.thumbnail.url in cells[2] and "badge-synthetic" in cells[2] and "not a photograph" in cells[2]
    for gap in (3, 4, 5):
        assert "No image yet" in cells[gap] and "<img" not in cells[gap]
    assert pending_3.thumbnail.url not in str(cells) and "private/" not in str(cells) and hidden_4.public_id.hex not in str(cells)
    assert real_6.thumbnail.url in cells[6]
    for skin_type, cell in cells.items():  # each links to its cell: the search page filtered by condition and type
        assert f'href="/search/?condition=melanoma&amp;fitzpatrick={skin_type}"' in cell


# --- "often confused with" and the drill page -------------------------------------------------


@pytest.fixture
def tone_v(add_image):  # noqa: F811
    """Melanoma on V with three of its listed look-alikes on V, eczema on V (not listed), tinea on I."""
    return {
        slug: add_image(slug, skin_type=skin_type)
        for slug, skin_type in (("melanoma", 5), ("melanocytic-nevus", 5), ("sk-isk", 5), ("basal-cell-carcinoma", 5), ("eczema", 5), ("tinea", 1))
    }


def test_the_image_page_shows_listed_lookalikes_on_neighbouring_tones(client, tone_v):
    html = client.get(reverse("atlas:image_detail", args=[tone_v["melanoma"].public_id])).text
    section = html.split('id="lookalike-heading"', 1)[1].split("</section>", 1)[0]
    assert "Often confused with" in html and "type IV, V, VI skin" in section
    for slug in ("melanocytic-nevus", "sk-isk", "basal-cell-carcinoma"):
        assert tone_v[slug].thumbnail.url in section
    assert section.count('data-basis="listed"') == 3 and "listed look-alike" in section
    assert tone_v["eczema"].thumbnail.url not in section  # not listed, and no model to find it similar
    assert "once its index is built" in section
    assert f'{reverse("atlas:condition_drill", args=["melanoma"])}?type=5' in section


def test_the_drill_page_asks_which_of_four_and_hides_the_answer(client, tone_v):
    response = client.get(reverse("atlas:condition_drill", args=["melanoma"]), {"type": "5"})
    assert response.status_code == 200 and response["Cache-Control"].startswith("max-age=0")
    html = response.text
    assert "Which of these 4 is Melanoma?" in html and "type V skin" in html and "For learning, not diagnosis" in html
    choices = re.findall(r'name="choice" value="([0-9a-f-]+)"', html)
    assert len(choices) == 4 and str(tone_v["melanoma"].public_id) in choices
    assert "Melanocytic nevus" not in html.split('class="drill"', 1)[1]  # option names stay hidden until answered
    assert "only listed look-alikes are used" in html


def test_answering_a_drill_shows_right_or_wrong_and_where_each_pair_comes_from(client, tone_v):
    url = reverse("atlas:condition_drill", args=["melanoma"])
    options = ",".join(str(tone_v[s].public_id) for s in ("melanocytic-nevus", "melanoma", "sk-isk", "basal-cell-carcinoma"))
    right = client.get(url, {"type": "5", "options": options, "choice": str(tone_v["melanoma"].public_id)})
    assert right.status_code == 200 and "Right: that is Melanoma." in right.text
    assert right.text.count('data-basis="listed"') == 3 and 'data-basis="answer"' in right.text
    wrong = client.get(url, {"type": "5", "options": options, "choice": str(tone_v["sk-isk"].public_id)})
    assert "Not quite: you chose SK/ISK." in wrong.text and "is-answer" in wrong.text
    assert client.get(url, {"type": "5", "options": options, "choice": str(tone_v["sk-isk"].public_id)}).text.count("Not quite") == 1  # a replay: the same feedback


def test_a_drill_for_a_condition_with_no_lookalikes_says_so(client, add_image):  # noqa: F811
    add_image("other", skin_type=4)
    response = client.get(reverse("atlas:condition_drill", args=["other"]))
    assert response.status_code == 200 and "Other has no listed look-alikes" in response.text
    assert 'data-code="no_lookalikes"' in response.text and 'name="choice"' not in response.text


def test_a_drill_with_too_few_lookalikes_offers_other_types(client, tone_v, add_image):  # noqa: F811
    add_image("melanoma", skin_type=2)
    response = client.get(reverse("atlas:condition_drill", args=["melanoma"]), {"type": "2"})
    assert response.status_code == 200 and "Only 0 look-alike conditions of Melanoma have public images on type II skin" in response.text
    assert f'{reverse("atlas:condition_drill", args=["melanoma"])}?type=5' in response.text


@pytest.mark.parametrize("params", [{"type": "7"}, {"type": "V"}, {"options": "x,y", "choice": "z"}, {"options": "", "choice": "00000000-0000-0000-0000-000000000000"}])
def test_bad_drill_input_is_a_clear_400(client, tone_v, params):
    response = client.get(reverse("atlas:condition_drill", args=["melanoma"]), params)
    assert response.status_code == 400 and 'class="drill-message"' in response.text


def test_a_drill_never_shows_images_that_are_not_public(client, tone_v):
    hidden = Image.objects.get(pk=tone_v["sk-isk"].pk)
    url = reverse("atlas:condition_drill", args=["melanoma"])
    options = ",".join(str(tone_v[s].public_id) for s in ("melanocytic-nevus", "melanoma", "sk-isk", "basal-cell-carcinoma"))
    Image.objects.filter(pk=hidden.pk).update(is_public=False, file="private/x.png", thumbnail="private/x-t.png")
    response = client.get(url, {"type": "5", "options": options, "choice": str(tone_v["melanoma"].public_id)})
    assert "no longer public" in response.text and hidden.thumbnail.url not in response.text
    fresh = client.get(url, {"type": "5"})  # two listed look-alikes left on V: too few for a drill
    assert "Only 2 look-alike conditions" in fresh.text and str(hidden.public_id) not in fresh.text
