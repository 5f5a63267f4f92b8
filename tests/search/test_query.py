import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from atlas.models import Image
from atlas.services.image_files import image_visibility_set
from search import indexing, query
from search.models import ImageEmbedding, IndexBuild
from search.errors import SearchError, SearchUnavailable
from search.query import SearchFilters, query_interpret, search_image, search_similar, search_text
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
    for filters in (SearchFilters(), SearchFilters(conditions=("melanoma",))):
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


def test_melanoma_returns_only_melanoma(atlas):
    result = search_text(query="melanoma", k=10)
    assert len(result.hits) == 6
    assert {hit.image.condition.slug for hit in result.hits} == {"melanoma"}


def test_a_lay_synonym_filters_to_its_condition(atlas):
    assert {hit.image.condition.slug for hit in search_text(query="ringworm", k=10).hits} == {"tinea"}


def test_skin_tone_words_rank_matching_types_first(atlas):
    hits = search_text(query="melanoma on dark skin", k=6).hits
    assert [hit.image.fitzpatrick_type in (5, 6) for hit in hits] == [True, True, False, False, False, False]
    assert hits[0].boosted and not hits[2].boosted


def test_explicit_filters_apply(atlas):
    result = search_text(query="skin", filters=SearchFilters(skin_types=(5,)), k=20)
    assert len(result.hits) == 4 and {h.image.fitzpatrick_type for h in result.hits} == {5}
    assert search_text(query="skin", filters=SearchFilters(origin="synthetic"), k=5).hits == []


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


@pytest.mark.parametrize(("query", "code"), [("", "empty_query"), ("   \n", "empty_query"), ("x" * 10_000, "query_too_long")])
def test_bad_queries_are_refused_clearly(atlas, query, code):
    with pytest.raises(SearchError) as caught:
        search_text(query=query)
    assert caught.value.code == code


def test_bad_filters_are_refused(atlas):
    for filters, k, code in [
        (SearchFilters(skin_types=(7,)), 5, "bad_skin_type"),
        (SearchFilters(conditions=("nope",)), 5, "unknown_condition"),
        (SearchFilters(origin="fake"), 5, "bad_origin"),
        (SearchFilters(), 0, "bad_k"),
        (SearchFilters(), 10_000, "bad_k"),
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
