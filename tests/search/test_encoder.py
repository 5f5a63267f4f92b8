import numpy as np
import open_clip
import pytest
import torch
from PIL import Image as PILImage

from search import encoder as encoder_module
from search.encoder import EncoderUnavailable, load_encoder, model_version
from tests.search.conftest import MODEL


def test_it_loads_a_checkpoint_file_through_open_clips_pretrained_path(tiny_checkpoint):
    model, _, _ = open_clip.create_model_and_transforms(MODEL, pretrained=str(tiny_checkpoint))
    saved = torch.load(tiny_checkpoint, weights_only=True)
    loaded = model.state_dict()
    assert set(saved) == set(loaded)
    for name in ("visual.conv1.weight", "token_embedding.weight", "text_projection"):
        assert torch.allclose(loaded[name], saved[name].float())


def test_it_returns_unit_float32_vectors(tiny_checkpoint):
    encoder = load_encoder(MODEL, str(tiny_checkpoint), "cpu")
    images = [PILImage.new("RGB", (80, 60), (i * 40, 90, 120)) for i in range(3)]
    image_vectors = encoder.embed_images(images)
    text_vectors = encoder.embed_texts(["melanoma on dark skin", "eczema"])
    for vectors, rows in ((image_vectors, 3), (text_vectors, 2)):
        assert vectors.dtype == np.float32 and vectors.shape == (rows, encoder.dim)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_it_loads_weights_once_per_process(tiny_checkpoint, monkeypatch):
    load_encoder.cache_clear()
    calls = []
    real = open_clip.create_model_and_transforms
    monkeypatch.setattr(open_clip, "create_model_and_transforms", lambda *a, **kw: calls.append(a) or real(*a, **kw))
    import search.tasks  # noqa: F401  importing the tasks module must not load a model

    assert calls == []
    first = load_encoder(MODEL, str(tiny_checkpoint), "cpu")
    second = load_encoder(MODEL, str(tiny_checkpoint), "cpu")
    assert first is second and len(calls) == 1


def test_the_version_names_the_checkpoint_contents(tiny_checkpoint, tmp_path):
    copy = tmp_path / "copy.pt"
    copy.write_bytes(tiny_checkpoint.read_bytes())
    assert model_version(MODEL, str(copy)) == model_version(MODEL, str(tiny_checkpoint))
    copy.write_bytes(tiny_checkpoint.read_bytes() + b"\0")
    assert model_version(MODEL, str(copy)) != model_version(MODEL, str(tiny_checkpoint))


def test_a_hub_tag_without_a_local_copy_is_refused_not_downloaded(monkeypatch):
    monkeypatch.setattr(encoder_module, "_hub_tag_cached", lambda cfg: False)
    with pytest.raises(EncoderUnavailable, match="never downloads"):
        load_encoder("ViT-B-32", "openai", "cpu")


def test_a_missing_checkpoint_file_says_how_to_make_one(tmp_path):
    with pytest.raises(EncoderUnavailable, match="train_clip"):
        load_encoder(MODEL, str(tmp_path / "missing.pt"), "cpu")
