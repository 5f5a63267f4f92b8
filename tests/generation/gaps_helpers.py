"""Shared data for the gap-filling tests: a tiny real catalogue and a tiny DermGAN checkpoint."""

from __future__ import annotations

from pathlib import Path

from atlas.models import Condition, Source
from atlas.services.ingestion import Box, image_ingest
from generation.models import GanCheckpoint
from generation.train import train
from tests.conftest import make_image_bytes

from .helpers import VOCAB, synthetic_pairs, tiny_config

_TRAINED: dict[str, Path] = {}


def tiny_checkpoint_file(directory: Path) -> Path:
    """A 64x64 generator trained for two steps (a second or two on CPU): ugly but real.

    64x64 with six halvings is the smallest U-Net with a dropout block, the noise source that
    makes samples differ. Trained once per test session and copied where it is needed.
    """
    if "file" not in _TRAINED:
        result = train(tiny_config(steps=2, image_size=64, num_downs=6), pairs=synthetic_pairs(size=64),
                       vocabulary=list(VOCAB), data_fingerprint="gaps-test", out_dir=directory / "run", progress=False)
        _TRAINED["file"] = result.checkpoints[-1]
    return _TRAINED["file"]


def tiny_checkpoint(directory: Path) -> GanCheckpoint:
    path = tiny_checkpoint_file(directory)
    return GanCheckpoint.objects.create(path=str(path), run="gaps-test", preset="fast", step=2,
                                        data_fingerprint="gaps-test", is_active=True)


def ingest_real(source: Source, condition: Condition, seed: int, *, skin: int, boxes=(Box(40, 30, 30, 20),)):
    return image_ingest(
        file=make_image_bytes(160, 120, seed=seed, color=(230 - 30 * skin, 160, 130), fmt="PNG"),
        condition=condition, source=source, fitzpatrick_type=skin, regions=list(boxes),
        enqueue_followups=False,
    ).image


def small_catalogue(source: Source) -> dict:
    """Melanoma on types I-III (2, 2, 1 real images), psoriasis on type I (1), and a melanoma
    image from a source whose terms forbid generative use (its boxes must never be used)."""
    melanoma = Condition.objects.get(slug="melanoma")
    psoriasis = Condition.objects.get(slug="psoriasis")
    closed = Source.objects.create(name="No-AI clinic", slug="no-ai", licence="CC-BY-NC-4.0",
                                   allows_generative_training=False)
    allowed = [ingest_real(source, melanoma, seed, skin=skin) for seed, skin in ((1, 1), (2, 1), (3, 2), (4, 2), (5, 3))]
    allowed.append(ingest_real(source, psoriasis, 6, skin=1, boxes=(Box(10, 10, 50, 40), Box(90, 60, 20, 20))))
    forbidden = ingest_real(closed, melanoma, 7, skin=4, boxes=(Box(0, 0, 150, 110),))
    return {"melanoma": melanoma, "psoriasis": psoriasis, "allowed": allowed, "forbidden": forbidden}
