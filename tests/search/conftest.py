"""Search fixtures: a tiny random open_clip checkpoint written by the tests, private index dirs."""

from __future__ import annotations

import pytest

from atlas.models import Condition, Source
from atlas.services.ingestion import image_ingest
from search import query
from tests.conftest import approved, make_image_bytes

MODEL = "atlas-clip-tiny"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A random-init atlas-clip-tiny state dict saved the way train_clip saves it, with the ONNX
    query towers exported beside it (web processes embed queries with those)."""
    import open_clip
    import torch

    from search.clip_train import save_checkpoint
    from search.encoder import register_model_configs

    register_model_configs()
    torch.manual_seed(0)
    model = open_clip.create_model(MODEL)
    path = tmp_path_factory.mktemp("clip") / "tiny.pt"
    save_checkpoint(model, path, metadata={"note": "random init, written by tests"})
    from search.onnx_export import export_onnx

    export_onnx(model_name=MODEL, pretrained=str(path))
    return path


@pytest.fixture
def search_settings(settings, tiny_checkpoint, tmp_path):
    settings.SEARCH_CLIP_MODEL = MODEL
    settings.SEARCH_CLIP_PRETRAINED = str(tiny_checkpoint)
    settings.SEARCH_CLIP_DEVICE = "cpu"
    settings.SEARCH_INDEX_DIR = tmp_path / "index"
    query.reset_caches()
    yield settings
    query.reset_caches()


@pytest.fixture
def add_image(db, source: Source):
    """Ingest a small distinct image: add_image("melanoma", skin_type=5)."""
    counter = iter(range(1, 10_000))

    def make(slug: str = "melanoma", *, skin_type: int | None = 2, origin: str = "real", is_public: bool = True, colour=None,
             reviewed: bool = True):
        # Synthetic images start pending review; `reviewed` approves them (public), as most tests want.
        seed = next(counter)
        colour = colour or ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256)
        provenance = {"model": "test"} if origin == "synthetic" else None
        image = image_ingest(
            file=make_image_bytes(color=colour, seed=seed, fmt="PNG"),
            condition=Condition.objects.get(slug=slug),
            source=source,
            origin=origin,
            fitzpatrick_type=skin_type,
            provenance=provenance,
            is_public=is_public,
            enqueue_followups=False,
        ).image
        return approved(image) if reviewed else image

    return make
