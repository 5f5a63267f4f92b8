"""The server-rendered atlas pages: content, links, badges, and what never shows."""

from __future__ import annotations

import uuid

import pytest
from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path, reverse

from atlas.models import Condition, Source
from atlas.services.ingestion import Box, image_ingest
from tests.conftest import approved, make_image_bytes

PROVENANCE = {"model": "dermgan-test", "checkpoint": "ckpt-42.pt", "seed": 4242, "job": 7, "map": {"skin_type": 6}}

# URL confs for the staff gap-filling note: with and without a "generation:fill_gaps" URL.
_base = [path("admin/", admin.site.urls), path("", include("atlas.web.urls"))]
_fill_gaps = ([path("fill/", lambda request: HttpResponse(), name="fill_gaps")], "generation")


class WithFillGaps:
    urlpatterns = [*_base, path("generation/", include(_fill_gaps))]


class WithoutFillGaps:
    urlpatterns = _base


def ingest(source, slug: str, skin_type: int | None, *, seed: int, synthetic: bool = False, public: bool = True, reviewed: bool = True, **kw):
    # Synthetic images start pending review; `reviewed` approves them, as a reviewer would.
    image = image_ingest(
        file=make_image_bytes(100, 80, seed=seed, fmt="PNG"),
        condition=Condition.objects.get(slug=slug),
        source=source,
        origin="synthetic" if synthetic else "real",
        fitzpatrick_type=skin_type,
        fitzpatrick_label_source="dermatologist" if skin_type else "",
        provenance=PROVENANCE if synthetic else None,
        is_public=public,
        **kw,
    ).image
    return approved(image) if reviewed else image


@pytest.fixture
def real(source):
    return ingest(source, "melanoma", 5, seed=1, body_site="back", regions=[Box(10, 20, 30, 40, "lesion")])


@pytest.fixture
def synthetic(source):
    return ingest(source, "melanoma", 6, seed=2, synthetic=True)


@pytest.fixture
def private(source):
    return ingest(source, "melanoma", 5, seed=3, public=False)


def test_every_page_carries_the_education_note(client, db):
    assert "For education, not diagnosis" in client.get(reverse("atlas:coverage")).text


def test_home_shows_counts_and_links(client, real, synthetic):
    page = client.get(reverse("atlas:home")).text
    assert 'class="stat-n">1</span> real images' in page
    assert 'class="stat-n">1</span> synthetic images' in page
    assert reverse("atlas:coverage") in page


def test_home_says_when_the_images_are_procedural_demo_data(client, real):
    assert "procedurally generated" not in client.get(reverse("atlas:home")).text
    Source.objects.filter(pk=real.source_id).update(is_procedural=True)
    assert "procedurally generated" in client.get(reverse("atlas:home")).text


def test_coverage_is_a_table_with_headers(client, real):
    page = client.get(reverse("atlas:coverage")).text
    assert "<table" in page and '<th scope="col">' in page and '<th scope="row"' in page


def test_coverage_cell_links_to_its_images(client, real, synthetic):
    page = client.get(reverse("atlas:coverage")).text
    assert '/search/?condition=melanoma&amp;fitzpatrick=5"' in page
    assert '/search/?condition=melanoma&amp;fitzpatrick=6"' in page


def test_coverage_cell_shows_real_and_synthetic_counts_as_text(client, real, synthetic):
    page = client.get(reverse("atlas:coverage")).text
    cell = page.split('/search/?condition=melanoma&amp;fitzpatrick=6"')[1].split("</td>")[0]
    assert '<span class="n-real">0<span class="vh"> real</span>' in cell
    assert '<span class="n-syn">+1' in cell


def test_coverage_marks_empty_cells_as_gaps(client, real):
    page = client.get(reverse("atlas:coverage")).text
    # every cell of types I-VI but melanoma on V; the unknown column is not a gap to fill
    assert page.count('<td class="gap">') == Condition.objects.count() * 6 - 1


def test_coverage_does_not_count_non_public_images(client, private):
    assert "fitzpatrick=5" not in client.get(reverse("atlas:coverage")).text


def test_staff_see_a_link_to_gap_filling_when_it_exists(admin_client, settings):
    settings.ROOT_URLCONF = WithFillGaps
    assert 'href="/generation/fill/"' in admin_client.get(reverse("atlas:coverage")).text


def test_staff_see_a_placeholder_while_gap_filling_is_missing(admin_client, settings):
    settings.ROOT_URLCONF = WithoutFillGaps
    assert "Gap filling with synthetic images is not installed yet" in admin_client.get(reverse("atlas:coverage")).text


def test_the_public_sees_no_curator_note(client, settings, db):
    settings.ROOT_URLCONF = WithFillGaps
    assert "Curators:" not in client.get(reverse("atlas:coverage")).text


def test_condition_list_shows_synonyms_and_counts(client, real):
    page = client.get(reverse("atlas:condition_list")).text
    assert "ringworm" in page
    melanoma = page.split(reverse("atlas:condition_detail", args=["melanoma"]))[1].split("</li>")[0]
    assert "1 real" in melanoma


def test_condition_page_grid_links_each_cell_by_origin(client, real, synthetic):
    page = client.get(reverse("atlas:condition_detail", args=["melanoma"])).text
    assert "/search/?condition=melanoma&amp;fitzpatrick=5&amp;origin=real" in page
    assert "/search/?condition=melanoma&amp;fitzpatrick=6&amp;origin=synthetic" in page


def test_condition_page_grid_marks_gaps(client, real):
    across = client.get(reverse("atlas:condition_detail", args=["melanoma"])).text.split('class="across"')[1]
    across = across.split("</table>")[0]
    assert across.count('<td class="gap">') == 2 * 5  # types I-IV and VI, in both rows


def test_unknown_condition_is_404(client, db):
    assert client.get(reverse("atlas:condition_detail", args=["no-such-thing"])).status_code == 404


def test_skin_type_page_lists_its_images(client, real, synthetic):
    page = client.get(reverse("atlas:skin_type_detail", args=[5])).text
    assert str(real.public_id) in page and str(synthetic.public_id) not in page


def test_skin_type_outside_one_to_six_is_404(client, db):
    assert client.get(reverse("atlas:skin_type_detail", args=[7])).status_code == 404


def test_search_page_filters_by_several_skin_types(client, source, real, synthetic):
    other = ingest(source, "melanoma", 2, seed=9)
    page = client.get(reverse("atlas:search"), {"condition": "melanoma", "fitzpatrick": ["5", "6"]}).text
    assert str(real.public_id) in page and str(synthetic.public_id) in page
    assert str(other.public_id) not in page


def test_search_page_filters_by_origin(client, real, synthetic):
    page = client.get(reverse("atlas:search"), {"origin": "synthetic"}).text
    assert str(synthetic.public_id) in page and str(real.public_id) not in page


def test_search_page_filters_unknown_skin_type(client, source, real):
    unknown = ingest(source, "melanoma", None, seed=9)
    page = client.get(reverse("atlas:search"), {"fitzpatrick": "unknown"}).text
    assert str(unknown.public_id) in page and str(real.public_id) not in page


def test_search_page_rejects_an_unknown_condition_clearly(client, real):
    response = client.get(reverse("atlas:search"), {"condition": "nope"})
    assert response.status_code == 400
    assert "No condition is called \u201cnope\u201d" in response.text
    assert str(real.public_id) not in response.text


def test_search_page_pagination_keeps_the_query(client, source, settings, monkeypatch):
    monkeypatch.setattr("atlas.web.views.PAGE_SIZE", 2)
    for seed in range(3):
        ingest(source, "melanoma", 5, seed=seed + 10)
    page = client.get(reverse("atlas:search"), {"condition": "melanoma", "fitzpatrick": "5"}).text
    assert "?condition=melanoma&amp;fitzpatrick=5&amp;page=2" in page


def test_search_page_never_shows_non_public_images(client, real, private):
    page = client.get(reverse("atlas:search")).text
    assert str(real.public_id) in page and str(private.public_id) not in page


def test_image_detail_shows_labels_source_and_licence(client, real):
    page = client.get(reverse("atlas:image_detail", args=[real.public_id])).text
    for text in ("Melanoma", "Fitzpatrick V", "dermatologist label", "back", "Test clinic", "CC-BY-4.0"):
        assert text in page


def test_image_detail_draws_regions_in_percent_with_a_toggle(client, real):
    page = client.get(reverse("atlas:image_detail", args=[real.public_id])).text
    # box (10, 20, 30x40) on a 100x80 image
    assert 'style="left:10.000%;top:25.000%;width:30.000%;height:50.000%"' in page
    assert 'data-roi-toggle aria-controls="roi-overlay"' in page and 'id="roi-overlay"' in page


def test_synthetic_detail_shows_badge_and_provenance(client, synthetic):
    page = client.get(reverse("atlas:image_detail", args=[synthetic.public_id])).text
    assert ">SYNTHETIC</span>" in page
    for text in ("dermgan-test", "ckpt-42.pt", "4242", "job", "&quot;skin_type&quot;: 6"):
        assert text in page


def test_real_detail_has_no_synthetic_badge(client, real):
    assert "badge-synthetic thumb-badge" not in client.get(reverse("atlas:image_detail", args=[real.public_id])).text


def test_detail_links_same_condition_on_other_skin_types(client, real, synthetic):
    page = client.get(reverse("atlas:image_detail", args=[real.public_id])).text
    assert "/search/?condition=melanoma&amp;fitzpatrick=6" in page
    assert reverse("atlas:image_detail", args=[synthetic.public_id]) in page


def test_non_public_image_detail_is_404(client, private):
    assert client.get(reverse("atlas:image_detail", args=[private.public_id])).status_code == 404


def test_unknown_image_is_404(client, db):
    assert client.get(reverse("atlas:image_detail", args=[uuid.uuid4()])).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        ("atlas:condition_detail", ["melanoma"], {}),
        ("atlas:skin_type_detail", [6], {}),
        ("atlas:search", [], {}),
        ("atlas:search", [], {"origin": "synthetic"}),
        ("atlas:image_detail", "real", {}),
    ],
)
def test_every_listing_badges_synthetic_thumbnails(client, real, synthetic, url):
    name, args, query = url
    if args == "real":  # the detail page of a real image lists the same condition on other types
        args = [real.public_id]
    page = client.get(reverse(name, args=args), query).text
    thumb = page.split(f'href="{reverse("atlas:image_detail", args=[synthetic.public_id])}"')[1].split("</figure>")[0]
    assert '<span class="badge badge-synthetic thumb-badge">Synthetic</span>' in thumb
    assert "synthetic image generated by a GAN" in thumb  # the alt text says it too
