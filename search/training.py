"""The offline search model: train_clip on the catalogue, and the demo model shipped in the repository."""

from __future__ import annotations

import logging

from django.conf import settings

from atlas.demo.shipped import shipped_install
from atlas.models import Image
from search.errors import SearchUnavailable
from search.indexing import open_pixels

logger = logging.getLogger(__name__)


# --- training the offline model -------------------------------------------------------------


def clip_samples() -> list:
    """(image, caption metadata) for every public image: the training data of train_clip."""
    from search.clip_train import CaptionMeta, Sample

    samples = []
    for image in Image.objects.public().select_related("condition", "source").order_by("id"):
        meta = CaptionMeta(
            condition=image.condition.name,
            synonyms=tuple(image.condition.synonyms),
            fitzpatrick_type=image.fitzpatrick_type,
            body_site=image.body_site,
            origin=image.origin,
        )
        samples.append(Sample(key=image.training_identity, meta=meta, load=lambda image=image: open_pixels(image)))
    return samples


FINETUNE_LR = 1e-5  # the default learning rate when starting from a general checkpoint (--init)
TEXT_TUNE_LR = 3e-4  # --text-only: the small text tower moves little in a few hundred steps at 1e-5


def clip_model_train(
    *,
    preset: str = "fast",
    epochs: int | None = None,
    out: str = "",
    command: str = "",
    init: str = "",
    model_name: str = "",
    lr: float | None = None,
    device: str = "",
    max_minutes: float | None = None,
    text_only: bool = False,
    threads: int | None = None,
):
    """Train the open_clip search model on the catalogue and save it where settings load it from.

    `init` starts from a local open_clip checkpoint of `model_name` (default SEARCH_CLIP_MODEL)
    instead of random weights, at a fine-tuning learning rate unless `lr` says otherwise.
    `device` "cuda" trains on a GPU (default: the CPU, which is how the demo model is made).
    `max_minutes` is a wall-clock budget: the learning rate decays within it, then training stops.
    `text_only` tunes only the text tower of `init` (search/clip_train.py, `train_text`).
    """
    from pathlib import Path

    from search.clip_train import TEXT_TUNE, train
    from search.clip_train import preset as make_config

    if text_only and not init:
        raise ValueError("--text-only tunes an existing model: give --init CHECKPOINT")
    if lr is None and init:
        lr = TEXT_TUNE_LR if text_only else FINETUNE_LR
    tune = TEXT_TUNE if text_only else {}
    config = make_config(
        preset, epochs=epochs or tune.get("epochs"), warmup_steps=tune.get("warmup_steps"), model_name=model_name or settings.SEARCH_CLIP_MODEL, init=init or None, lr=lr, device=device or None,
        wall_budget_seconds=max_minutes * 60 if max_minutes else None, text_only=text_only or None, threads=threads,
    )
    samples = clip_samples()
    if len(samples) < 2:
        raise SearchUnavailable(f"the catalogue has {len(samples)} public images; train_clip needs some (run seed_demo)")
    result = train(samples, config=config, out_path=Path(out or settings.SEARCH_CLIP_PRETRAINED), command=command)
    search_onnx_export(model_name=config.model_name, pretrained=str(result.checkpoint))
    return result


# --- the query towers for web processes ----------------------------------------------------


def search_onnx_export(*, model_name: str = "", pretrained: str = "", force: bool = False):
    """Write the ONNX towers web processes embed queries with, beside the checkpoint
    (search/onnx_export.py); returns the ExportReport, or None when the files already belong to
    this checkpoint and `force` is off. Runs where torch is: train_clip, prepare_demo, the
    search_export_onnx command."""
    from search.encoder import EncoderUnavailable
    from search.onnx_export import export_onnx, onnx_ensure

    name, path = model_name or settings.SEARCH_CLIP_MODEL, str(pretrained or settings.SEARCH_CLIP_PRETRAINED)
    try:
        report = export_onnx(model_name=name, pretrained=path) if force else onnx_ensure(name, path)
    except EncoderUnavailable as exc:
        raise SearchUnavailable(f"the ONNX export of the search model failed: {exc}") from exc
    if report:
        logger.info("exported the ONNX query towers of %s in %.0f s (lowest cosine to torch: images %.5f, texts %.5f)",
                    report.model_version, report.seconds, report.image_cosine, report.text_cosine)
    return report


def _onnx_note() -> str:
    """The demo install's line about the ONNX towers (a failure is reported, not raised: the
    rest of the demo still works, and search says why it cannot answer)."""
    try:
        report = search_onnx_export()
    except SearchUnavailable as exc:
        logger.warning("%s", exc)
        return f"; {exc}"
    return f"; ONNX query towers exported ({report.seconds:.0f} s)" if report else ""


# --- the demo model shipped in the repository ---------------------------------------------

DEMO_MODEL_DIR = settings.BASE_DIR / "search" / "demo_model"


def demo_model_ensure(*, train_if_stale: bool = True) -> str:
    """Make sure the configured CLIP checkpoint exists, without training when we can avoid it.

    The repository ships the fast-preset model that `train_clip` made on the default demo
    atlas (search/demo_model/, with the command and data fingerprint beside it). When the
    catalogue's fingerprint matches, that file is copied to SEARCH_CLIP_PRETRAINED; when it
    does not (other data, other seed), the model is trained here, which takes minutes.
    """
    from pathlib import Path

    from search.clip_train import data_fingerprint

    target = Path(settings.SEARCH_CLIP_PRETRAINED)
    if target.exists():
        return f"search model: {target} present{_onnx_note()}"
    shipped = DEMO_MODEL_DIR / f"{settings.SEARCH_CLIP_MODEL}.pt"
    catalogue = data_fingerprint(clip_samples())
    if shipped_install(shipped=shipped, target=target, fingerprint=catalogue):
        return f"search model: copied the shipped demo model (data fingerprint {catalogue} matches){_onnx_note()}"
    if not train_if_stale:
        return f"search model: none for this catalogue (fingerprint {catalogue}); run train_clip"
    logger.warning("no shipped search model fits this catalogue (fingerprint %s): training one (minutes)", catalogue)
    clip_model_train(preset="fast", command="python manage.py train_clip --preset fast")
    return "search model: trained with train_clip --preset fast"
