"""Repeated query texts reuse their vector (search.query._text_vector): the text tower runs once
per text and model version, and the answer is the one a fresh embedding gives."""

from __future__ import annotations

import pytest

from search import indexing, query
from search.query import search_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def atlas(search_settings, add_image):
    for slug in ("melanoma", "psoriasis", "tinea"):
        for skin_type in (2, 5):
            add_image(slug, skin_type=skin_type)
    indexing.index_rebuild()


def test_a_repeated_text_is_embedded_once_and_ranks_the_same(atlas, monkeypatch):
    encoder = indexing.query_encoder_get()
    calls = []
    real = type(encoder).embed_texts
    monkeypatch.setattr(type(encoder), "embed_texts", lambda self, texts: calls.append(list(texts)) or real(self, texts))
    first = search_text(query="itchy red rash", k=6)
    second = search_text(query="itchy  red rash", k=6)  # the same text once spaces are folded
    assert calls == [["itchy red rash"]]
    assert [(h.image.pk, h.score) for h in first.hits] == [(h.image.pk, h.score) for h in second.hits]
    search_text(query="a scaly plaque", k=6)
    assert len(calls) == 2


def test_the_cache_is_per_model_version_and_bounded(atlas, monkeypatch):
    encoder = indexing.query_encoder_get()
    vector = query._text_vector(encoder, "eczema")
    vector[:] = 0  # a caller changing its copy does not change the cached vector
    assert query._text_vector(encoder, "eczema").any()
    monkeypatch.setattr(query, "TEXT_CACHE_SIZE", 2)
    for text in ("a", "b", "c"):
        query._text_vector(encoder, text)
    assert [key[1] for key in query._text_cache] == ["b", "c"]
    assert all(key[0] == encoder.version for key in query._text_cache)
