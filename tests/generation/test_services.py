import json

import pytest
import torch
from django.core.management import CommandError, call_command
from django.db import IntegrityError

from atlas.models import Condition, Source
from atlas.services.ingestion import Box, image_ingest
from generation.models import GanCheckpoint
from generation.services import (
    GanError, gan_checkpoint_activate, gan_dataset_build, gan_dataset_current, gan_generator_load, gan_sweep,
    gan_train, images_generate,
)
from tests.conftest import make_image_bytes

from .helpers import one_torch_thread  # noqa: F401

TINY = dict(image_size=32, num_downs=5, ngf=8, ndf=8, batch_size=4, channels_last=False, checkpoint_every=2, sample_every=100, log_every=1)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def gan_root(tmp_path, settings):
    settings.GAN_ROOT = tmp_path / "gan"
    settings.GAN_DEVICE = "cpu"
    return settings.GAN_ROOT


def _ingest(source, condition, seed, *, origin="real", skin=3, regions=(Box(10, 10, 20, 20),)):
    return image_ingest(
        file=make_image_bytes(96, 80, seed=seed, color=(200 - 20 * skin, 150, 120), fmt="PNG"), condition=condition, source=source,
        origin=origin, fitzpatrick_type=skin, regions=list(regions), case_id=f"case-{seed}",
        provenance={"model": "test"} if origin == "synthetic" else None, enqueue_followups=False,
    ).image


@pytest.fixture
def catalogue(source, melanoma):
    closed = Source.objects.create(name="NC clinic", slug="nc", licence="CC-BY-NC-4.0", allows_generative_training=False)
    psoriasis = Condition.objects.get(slug="psoriasis")
    kept = [_ingest(source, melanoma if i % 2 else psoriasis, i, skin=1 + i % 6) for i in range(12)]
    excluded = [
        _ingest(source, melanoma, 100, origin="synthetic"),
        _ingest(closed, melanoma, 101),
        _ingest(source, melanoma, 102, regions=()),
    ]
    return kept, excluded


def test_build_uses_only_real_images_from_generative_sources(catalogue):
    kept, excluded = catalogue
    result = gan_dataset_build(window=64, crops_per_image=2, holdout_percent=30)
    manifest = gan_dataset_current()
    used = {item["image"] for item in manifest.items}
    assert used == {image.sha256 for image in kept}
    assert not used & {image.sha256 for image in excluded}
    assert result.n_train + result.n_eval == 24 and result.skipped["no_regions"] == 1
    assert {item["split"] for item in manifest.items} == {"train", "eval"}
    assert all(len(item["boxes"]) >= 1 for item in manifest.items)


def test_build_is_fingerprinted_and_reused(catalogue, source, melanoma):
    first = gan_dataset_build(window=64, crops_per_image=1)
    again = gan_dataset_build(window=64, crops_per_image=1)
    assert again.reused and again.fingerprint == first.fingerprint
    _ingest(source, melanoma, 200)
    assert gan_dataset_build(window=64, crops_per_image=1).fingerprint != first.fingerprint


def test_build_with_nothing_usable_is_an_error(db):
    with pytest.raises(GanError, match="no real images"):
        gan_dataset_build()
    with pytest.raises(CommandError, match="no real images"):
        call_command("build_gan_dataset")


def test_train_generate_sweep_end_to_end(catalogue, tmp_path):
    gan_dataset_build(window=64, crops_per_image=2, holdout_percent=30)
    rows = gan_train(preset="fast", steps=4, overrides=TINY, progress=False)
    assert [r.step for r in rows] == [2, 4]
    active = GanCheckpoint.objects.get(is_active=True)
    assert active == rows[-1] and active.metrics["losses"]["step"] == 4
    assert active.data_fingerprint == gan_dataset_current().fingerprint

    with pytest.raises(GanError, match="already exists"):
        gan_train(preset="fast", steps=4, overrides=TINY, progress=False)

    a = images_generate(condition="melanoma", skin_type=6, size=0.3, count=2, seed=3)
    b = images_generate(condition="melanoma", skin_type=6, size=0.3, count=2, seed=3)
    assert [i.tobytes() for i in a] == [i.tobytes() for i in b]

    call_command("generate", condition="melanoma", skin_type=5, count=2, out=str(tmp_path / "out"))
    assert len(list((tmp_path / "out").glob("*.png"))) == 2
    out = gan_sweep(kind="skin-type", out=tmp_path / "fig6.png")
    assert out.exists() and json.loads(out.with_suffix(".json").read_text())["columns"][-1] == "type 6"
    call_command("sweep", kind="size", out=str(tmp_path / "fig7.png"))
    assert (tmp_path / "fig7.png").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"condition": "no-such-thing", "skin_type": 3}, "unknown condition"),
        ({"condition": "melanoma", "skin_type": 7}, "skin type"),
        ({"condition": "melanoma", "skin_type": 3, "size": 1.5}, "size"),
    ],
)
def test_generate_bad_input_is_a_clear_error(catalogue, kwargs, message, tmp_path):
    gan_dataset_build(window=64, crops_per_image=1)
    gan_train(preset="fast", steps=2, overrides=TINY, progress=False)
    with pytest.raises(GanError, match=message):
        images_generate(**kwargs)
    with pytest.raises(CommandError, match=message):
        call_command("generate", condition=kwargs["condition"], skin_type=kwargs["skin_type"],
                     size=kwargs.get("size", 0.4), out=str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_no_active_checkpoint_is_a_clear_error(db):
    with pytest.raises(GanError, match="no active GAN checkpoint"):
        images_generate(condition="melanoma", skin_type=3)


def test_checkpoint_with_foreign_vocabulary_is_refused(catalogue, gan_root):
    gan_dataset_build(window=64, crops_per_image=1)
    (row,) = gan_train(preset="fast", steps=2, overrides=TINY, progress=False)
    path = gan_root / row.path
    state = torch.load(path, weights_only=True)
    state["vocabulary"][0] = "retired-condition"
    torch.save(state, path)
    with pytest.raises(GanError, match="vocabulary does not match"):
        gan_generator_load(checkpoint=row)


def test_only_one_checkpoint_is_active(catalogue):
    gan_dataset_build(window=64, crops_per_image=1)
    first, second = gan_train(preset="fast", steps=4, overrides=TINY, progress=False)
    gan_checkpoint_activate(checkpoint=first)
    assert list(GanCheckpoint.objects.filter(is_active=True)) == [first]
    with pytest.raises(IntegrityError):
        GanCheckpoint.objects.filter(pk=second.pk).update(is_active=True)


def test_export_and_register_round_trip(catalogue, tmp_path):
    gan_dataset_build(window=64, crops_per_image=1)
    gan_train(preset="fast", steps=2, overrides=TINY, progress=False)
    out = tmp_path / "ship" / "dermgan-fast.pt"
    call_command("export_gan", out=str(out), command="train_gan --preset fast")
    described = json.loads(out.with_suffix(".json").read_text())
    assert described["command"] == "train_gan --preset fast" and described["data_fingerprint"]
    call_command("register_gan_checkpoint", str(out), "--activate")
    active = GanCheckpoint.objects.get(is_active=True)
    assert active.path == str(out.resolve())
    assert len(images_generate(condition="melanoma", skin_type=4)) == 1
    out.write_bytes(b"not a checkpoint")
    with pytest.raises(CommandError, match="not a readable checkpoint"):
        call_command("register_gan_checkpoint", str(out))


def test_the_generator_cache_is_bounded_and_frees_what_it_drops(tmp_path, monkeypatch, settings):
    import gc
    import os
    import weakref
    from pathlib import Path

    from generation import services

    class Loaded:  # stands in for a generator (weights, GPU memory)
        def __init__(self, path):
            self.path, self.meta = path, {}

    monkeypatch.setattr(services.smp, "generator_load", lambda path, **kw: Loaded(path))
    monkeypatch.setattr(services, "catalogue_vocabulary", lambda: [])
    monkeypatch.setattr(services, "_cache", services.OrderedDict())
    settings.GAN_GENERATOR_CACHE_SIZE = 2
    files = []
    for n in range(4):
        files.append(tmp_path / f"g{n}.pt")
        files[-1].write_bytes(b"x")
    first = gan_generator_load(checkpoint=files[0])
    dropped = weakref.ref(first)
    del first
    gan_generator_load(checkpoint=files[1])
    gan_generator_load(checkpoint=files[0])  # used again: now the most recent
    gan_generator_load(checkpoint=files[2])  # evicts g1, the least recently used
    assert [Path(k[0]).name for k in services._cache] == ["g0.pt", "g2.pt"]
    gan_generator_load(checkpoint=files[3])
    assert [Path(k[0]).name for k in services._cache] == ["g2.pt", "g3.pt"]
    gc.collect()
    assert dropped() is None  # nothing else holds an evicted generator
    # A checkpoint file rewritten in place (new version): the old version goes at once.
    os.utime(files[3], ns=(1, 1))
    gan_generator_load(checkpoint=files[3])
    assert [(Path(k[0]).name, k[1] == 1) for k in services._cache] == [("g2.pt", False), ("g3.pt", True)]
