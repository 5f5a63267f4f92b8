import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from atlas.models import Image
from atlas.services.image_files import image_visibility_set
from search import indexing, query
from search.models import ImageEmbedding, IndexBuild
from search.errors import SearchError, SearchUnavailable
from atlas.filters import ImageFilters
from search.query import query_interpret, search_image, search_similar, search_text
from tests.conftest import make_image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def atlas(search_settings, add_image):
    """Six melanoma (types 1-6), tinea, eczema and a few more: a small indexed catalogue."""
    images = [add_image("melanoma", skin_type=t) for t in range(1, 7)]
    images += [add_image(slug, skin_type=t) for slug in ("tinea", "eczema", "psoriasis") for t in (2, 5)]
    indexing.index_rebuild()
    return images


def ids(result) -> list[int]:
    return [hit.image.pk for hit in result.hits]


# --- embeddings and reindex -----------------------------------------------------------------


def test_a_reindex_embeds_only_images_without_a_vector(atlas, add_image):
    assert ImageEmbedding.objects.count() == 12
    first = IndexBuild.objects.get()
    assert first.status == "succeeded" and first.embedded_count == 12 and first.vector_count == 12
    new = add_image("acne", skin_type=4)
    build = indexing.index_rebuild()
    assert (build.embedded_count, build.vector_count, build.full) == (1, 13, False)
    assert ImageEmbedding.objects.filter(image=new).count() == 1
    assert indexing.index_rebuild().embedded_count == 0


def test_a_reindex_drops_deleted_and_hidden_images(atlas):
    hidden, deleted = atlas[0], atlas[1]
    image_visibility_set(image=hidden, is_public=False)
    deleted.delete()
    build = indexing.index_rebuild()
    assert build.vector_count == 10 and build.dropped_count == 2
    assert not ImageEmbedding.objects.filter(image_id__in=[hidden.pk, deleted.pk]).exists()
    index, _, _ = query._index_for(build.model_version)
    assert not {hidden.pk, deleted.pk} & set(index.ids().tolist())


def test_hidden_and_deleted_images_never_come_back_even_before_a_reindex(atlas):
    image_visibility_set(image=atlas[0], is_public=False)
    atlas[1].delete()
    for filters in (ImageFilters(), ImageFilters(conditions=("melanoma",))):
        found = ids(search_text(query="a photo", filters=filters, k=50))
        assert atlas[0].pk not in found and atlas[1].pk not in found
        assert len(found) == (10 if filters.is_empty() else 4)


def test_the_after_ingest_task_stores_a_vector(search_settings, add_image):
    from search.tasks import embed_image_task

    image = add_image("acne")
    embed_image_task.delay(image.pk)
    assert ImageEmbedding.objects.filter(image=image).count() == 1
    embed_image_task.delay(image.pk)  # idempotent
    assert ImageEmbedding.objects.filter(image=image).count() == 1


# --- hybrid queries -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "conditions", "types"),
    [
        ("melanoma", ("melanoma",), ()),
        ("ringworm on the arm", ("tinea",), ()),
        ("tinea versicolor", ("tinea-versicolor",), ()),
        ("melanoma on dark skin", ("melanoma",), (5, 6)),
        ("psoriasis, Fitzpatrick type V", ("psoriasis",), (5,)),
        ("eczema types IV-VI", ("eczema",), (4, 5, 6)),
        ("dark marks on very dark brown skin", ("post-inflammatory-hyperpigmentation",), (5,)),
        ("hives on fair skin", ("urticaria",), (1, 2)),
        ("a rash that itches", (), ()),
        ("type in any other words", (), ()),
    ],
)
def test_query_interpretation(text, conditions, types):
    meaning = query_interpret(text)
    assert meaning.conditions == conditions and meaning.skin_types == types


def test_a_condition_word_ranks_that_condition_first_and_excludes_nothing(atlas):
    hits = search_text(query="melanoma", k=12).hits
    assert [hit.image.condition.slug for hit in hits[:6]] == ["melanoma"] * 6
    assert all(hit.boosted for hit in hits[:6]) and not any(hit.boosted for hit in hits[6:])
    assert len(hits) == 12  # the other conditions follow


def test_a_lay_synonym_ranks_its_condition_first(atlas):
    hits = search_text(query="ringworm", k=10).hits
    assert {hit.image.condition.slug for hit in hits[:2]} == {"tinea"} and len(hits) == 10


def test_a_chosen_condition_filter_filters(atlas):
    hits = search_text(query="ringworm", filters=ImageFilters(conditions=("melanoma",)), k=10).hits
    assert {hit.image.condition.slug for hit in hits} == {"melanoma"} and len(hits) == 6


def test_a_lay_phrase_naming_several_conditions_ranks_all_of_them_first(search_settings, add_image):
    images = [add_image(slug, skin_type=3) for slug in ("melanoma", "melanocytic-nevus", "acne", "acne", "vitiligo")]
    indexing.index_rebuild()
    hits = search_text(query="a mole that changed shape", k=5).hits
    assert {hit.image.condition.slug for hit in hits[:2]} == {"melanoma", "melanocytic-nevus"}
    assert {hit.image.pk for hit in hits} == {image.pk for image in images}


def test_a_misspelt_condition_is_corrected_boosted_and_suggested(atlas):
    result = search_text(query="melanomma", k=8)
    assert result.interpretation.suggestion == "melanoma"
    assert {hit.image.condition.slug for hit in result.hits[:6]} == {"melanoma"}
    assert result.as_dict()["interpreted"]["suggestion"] == "melanoma"


def test_skin_tone_words_rank_matching_types_first(atlas):
    hits = search_text(query="melanoma on dark skin", k=8).hits
    assert [hit.image.fitzpatrick_type in (5, 6) for hit in hits[:6]] == [True, True, False, False, False, False]
    assert [hit.image.condition.slug for hit in hits[:6]] == ["melanoma"] * 6
    assert all(hit.boosted for hit in hits[:6])
    hits = search_text(query="skin on dark skin", k=12).hits
    assert [hit.image.fitzpatrick_type in (5, 6) for hit in hits] == [True] * 5 + [False] * 7


def test_a_skin_type_without_the_condition_shows_the_nearest_types_labelled(search_settings, add_image):
    for t in (2, 4):
        add_image("melanoma", skin_type=t)
    add_image("acne", skin_type=6)
    indexing.index_rebuild()
    result = search_text(query="melanoma on type VI skin", k=3)
    assert result.skin_type_gap.as_dict() == {"conditions": ["melanoma"], "requested": [6], "nearest": [4]}
    assert [(h.image.fitzpatrick_type, h.nearest_type) for h in result.hits[:2]] == [(4, True), (2, False)]
    # chosen as filters: nothing matches, so the nearest type answers, labelled
    chosen = search_text(query="lesion", filters=ImageFilters(conditions=("melanoma",), skin_types=(6,)), k=5)
    assert [(h.image.fitzpatrick_type, h.nearest_type) for h in chosen.hits] == [(4, True)]
    assert chosen.as_dict()["skin_type_gap"]["nearest"] == [4]
    assert search_text(query="melanoma on type IV skin", k=3).skin_type_gap is None


def test_below_the_floor_there_is_no_confident_match_and_the_closest_are_apart(atlas, settings):
    settings.SEARCH_FLOOR_TEXT = 0.999
    result = search_text(query="nothing to do with skin: a red car", k=5)
    assert not result.confident and result.hits == [] and len(result.closest) == 5
    assert result.as_dict()["confident"] is False and len(result.as_dict()["closest"]) == 5
    # words that name a condition are evidence of their own
    assert search_text(query="melanoma", k=5).confident
    settings.SEARCH_FLOOR_TEXT = -1.0
    assert search_text(query="nothing to do with skin: a red car", k=5).confident


def test_a_photo_below_the_image_floor_is_no_confident_match(atlas, settings):
    settings.SEARCH_FLOOR_IMAGE = 0.999
    flat = make_image_bytes(64, 64, color=(200, 30, 30), fmt="PNG")
    result = search_image(data=flat, k=4)
    assert not result.confident and result.hits == [] and len(result.closest) == 4
    with atlas[3].file.open("rb") as handle:
        assert search_image(data=handle.read(), k=4).confident  # the same pixels score ~1.0


def test_the_total_counts_what_the_index_can_rank(atlas, add_image):
    add_image("melanoma", skin_type=3)  # visible, not indexed yet
    result = search_text(query="melanoma", k=2)
    assert result.total() == 12
    assert search_text(query="melanoma", k=20).total() == 12
    assert search_similar(image=atlas[0], k=2).total() == 11


def test_explicit_filters_apply(atlas):
    result = search_text(query="skin", filters=ImageFilters(skin_types=(5,)), k=20)
    assert len(result.hits) == 4 and {h.image.fitzpatrick_type for h in result.hits} == {5}
    assert search_text(query="skin", filters=ImageFilters(origin="synthetic"), k=5).hits == []


@pytest.mark.parametrize(("fetch_per_hit", "max_fetch", "all_allowed_ids"), [
    (16, 4096, False),  # the unfiltered ranking holds enough allowed images: one query over the candidates
    (1, 4096, False),  # too few in the first round: a second, wider one sized by its pass rate
    (1, 0, True),  # no second round allowed: every allowed id goes into the index
    (0, 4096, True),  # no candidates at all: the same
], ids=["rank-then-keep-allowed", "second-wider-round", "allowed-ids-after-one-round", "allowed-ids-into-the-index"])
def test_a_filtered_query_returns_the_top_k_allowed_by_every_path(atlas, monkeypatch, fetch_per_hit, max_fetch, all_allowed_ids):
    monkeypatch.setattr(query, "POSTFILTER_FETCH_PER_HIT", fetch_per_hit)
    monkeypatch.setattr(query, "POSTFILTER_MAX_FETCH", max_fetch)
    fetched = []
    monkeypatch.setattr(query, "_ids", lambda images, real=query._ids: fetched.append(1) or real(images))
    result = search_text(query="skin", filters=ImageFilters(skin_types=(5, 6)), k=3)
    hits = result.hits or result.closest
    encoder = indexing.encoder_get()
    stored, vectors = indexing.stored_vectors(encoder.version)
    text = encoder.embed_texts(["skin"])[0]
    allowed = set(Image.objects.filter(fitzpatrick_type__in=(5, 6)).values_list("id", flat=True))
    ranked = sorted((float(v @ text), int(i)) for i, v in zip(stored, vectors, strict=True) if int(i) in allowed)[::-1]
    assert [h.image.pk for h in hits] == [i for _, i in ranked[:3]]
    assert bool(fetched) == all_allowed_ids


def test_the_id_helpers_agree_with_the_orm_on_this_database(atlas):
    # PostgreSQL takes a packed bytea and one array parameter; other databases the plain ORM.
    visible = query.images_filtered(ImageFilters(skin_types=(2, 5)))
    expected = set(visible.values_list("id", flat=True))
    assert sorted(query._ids(visible).tolist()) == sorted(expected)
    assert query._ids(visible.none()).tolist() == []
    every = list(Image.objects.values_list("id", flat=True)) + [10**9]
    assert query._passing(visible, every) == expected
    assert query._passing(visible, []) == set()


def test_diversify_spreads_over_skin_types(atlas):
    hits = search_text(query="melanoma", k=6, diversify=True).hits
    assert sorted(hit.image.fitzpatrick_type for hit in hits) == [1, 2, 3, 4, 5, 6]


def test_more_like_this_excludes_the_image_itself(atlas):
    result = search_similar(image=atlas[0], k=5)
    assert len(result.hits) == 5 and atlas[0].pk not in ids(result)
    assert result.hits[0].score >= result.hits[-1].score


def test_a_photo_query_finds_the_same_pixels_first(atlas):
    stored = atlas[3]
    with stored.file.open("rb") as handle:
        data = handle.read()
    result = search_image(data=data, k=3)
    assert result.hits[0].image.pk == stored.pk and result.hits[0].score > 0.99
    assert Image.objects.count() == 12  # the upload was not stored


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty_query"),
        ("   \n", "empty_query"),
        ("x" * 10_000, "query_too_long"),
        ("melanoma\x00", "control_characters"),
        ("acne\x1b[31m", "control_characters"),
        ("the of and", "only_stop_words"),
        ("?!", "only_stop_words"),
    ],
)
def test_bad_queries_are_refused_clearly(atlas, text, code):
    with pytest.raises(SearchError) as caught:
        search_text(query=text)
    assert caught.value.code == code and caught.value.message


def test_a_query_that_is_only_a_skin_type_shows_that_type_first(atlas):
    result = search_text(query="type V", k=12)
    assert result.interpretation.only_skin_type and result.confident
    assert [hit.image.fitzpatrick_type == 5 for hit in result.hits] == [True] * 4 + [False] * 8


def test_bad_filters_are_refused(atlas):
    for filters, k, code in [
        (ImageFilters(skin_types=(7,)), 5, "bad_skin_type"),
        (ImageFilters(conditions=("nope",)), 5, "unknown_condition"),
        (ImageFilters(origin="fake"), 5, "bad_origin"),
        (ImageFilters(), 0, "bad_k"),
        (ImageFilters(), 10_000, "bad_k"),
    ]:
        with pytest.raises(SearchError) as caught:
            search_text(query="skin", filters=filters, k=k)
        assert caught.value.code == code


def test_bad_uploads_are_refused(atlas, settings):
    for data, code in [(b"", "empty_file"), (b"%PDF-1.4 not an image", "not_an_image"), (make_image_bytes()[:40], "corrupt")]:
        with pytest.raises(SearchError) as caught:
            search_image(data=data)
        assert caught.value.code == code
    settings.ATLAS_MAX_UPLOAD_BYTES = 1024
    with pytest.raises(SearchError) as caught:
        search_image(data=make_image_bytes(400, 400, fmt="PNG", compress_level=0))
    assert caught.value.code == "too_large"


# --- broken or missing index ----------------------------------------------------------------


def test_a_corrupt_index_falls_back_to_exact_search_and_reindex_repairs_it(atlas):
    pointer = indexing.index_store().read_pointer()
    (indexing.index_store().directory / pointer["file"]).write_bytes(b"garbage" * 100)
    query.reset_caches()
    result = search_text(query="melanoma", k=3)
    assert "corrupt" in result.fallback and result.index_version == "exact-fallback"
    assert len(result.hits) == 3
    build = indexing.index_rebuild()
    assert build.full  # the unreadable live index was rebuilt from stored vectors
    repaired = search_text(query="melanoma", k=3)
    assert repaired.fallback == "" and repaired.index_version == str(build.pk)


def test_no_index_and_no_vectors_is_unavailable_not_a_crash(search_settings, add_image):
    add_image("acne")
    with pytest.raises(SearchUnavailable, match="reindex"):
        search_text(query="acne")


# --- commands -------------------------------------------------------------------------------


def test_the_search_command_prints_json(atlas, capsys):
    call_command("search", "melanoma on dark skin", "-k", "3", "--json")
    payload = json.loads(capsys.readouterr().out)
    assert [hit["condition"] for hit in payload["hits"]] == ["melanoma"] * 3
    assert payload["interpreted"]["skin_types"] == [5, 6]
    assert {payload["hits"][0]["fitzpatrick_type"], payload["hits"][1]["fitzpatrick_type"]} == {5, 6}


def test_the_search_command_reports_bad_input_without_a_traceback(atlas):
    with pytest.raises(CommandError, match="type something"):
        call_command("search", " ")


def test_the_reindex_command_publishes_a_version(search_settings, add_image, capsys):
    add_image("acne")
    call_command("reindex", "--full")
    assert "1 vectors" in capsys.readouterr().out
    assert IndexBuild.objects.get().full
