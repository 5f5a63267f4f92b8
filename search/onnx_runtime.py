"""The query-side encoder on ONNX Runtime: web processes embed queries without torch (Django-free).

A gunicorn worker that imported torch and open_clip sat at about 1.3 GB RSS before any traffic
(docs/scaling.md). The two towers a query needs are exported to ONNX beside the checkpoint
(search/onnx_export.py, run wherever torch lives: train_clip, prepare_demo, index builds,
`manage.py search_export_onnx`) and run here with onnxruntime, the preprocessing in PIL and
numpy, the tokenizer in search/clip_tokenizer.py. Nothing in this module imports torch.

Each .onnx file carries the model version it was exported from (name + checkpoint hash, the
one stored with every vector). `load_onnx_encoder` refuses a file made from another version,
with a message that says how to make a matching one: a stale export would return vectors in
another space than the index and rank nonsense without any error.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from search.clip_tokenizer import ClipTokenizer
from search.encoder import EncoderUnavailable, file_sha256, model_version

logger = logging.getLogger(__name__)

FORMAT = "1"  # bumped when the files' inputs, outputs or metadata change meaning
TOWERS = ("image", "text")
RESAMPLING = {"bicubic": PILImage.Resampling.BICUBIC, "bilinear": PILImage.Resampling.BILINEAR}


class OnnxMismatch(EncoderUnavailable):
    """An ONNX export that does not belong to the configured model (another version or format)."""


def onnx_paths(model_name: str, pretrained: str) -> dict[str, Path]:
    """Where the exported towers of this model live: beside a checkpoint file, named after it.

    A hub tag has no file of ours to sit beside; those exports are not supported (the torch
    runtime still is: SEARCH_QUERY_RUNTIME=torch).
    """
    checkpoint = Path(pretrained)
    if not pretrained or checkpoint.suffix not in {".pt", ".pth", ".bin", ".safetensors"}:
        raise EncoderUnavailable(
            f"the ONNX query runtime needs a local checkpoint file; {pretrained!r} is not one "
            "(set SEARCH_CLIP_PRETRAINED to a file, or SEARCH_QUERY_RUNTIME=torch)"
        )
    return {tower: checkpoint.with_name(f"{checkpoint.stem}.{tower}.onnx") for tower in TOWERS}


def onnx_export_files(model_name: str, pretrained: str) -> list[Path]:
    """The export files of this model that exist (backups keep them beside the checkpoint)."""
    try:
        return [path for path in onnx_paths(model_name, pretrained).values() if path.is_file()]
    except EncoderUnavailable:  # a hub tag: nothing of ours to keep
        return []


@dataclass
class OnnxEncoder:
    """The query half of search.encoder.Encoder (same methods, same vectors) on ONNX Runtime."""

    image_session: Any  # onnxruntime.InferenceSession: (n, 3, S, S) float32 -> (n, dim)
    text_session: Any  # (n, context) int64 -> (n, dim)
    tokenizer: ClipTokenizer
    version: str
    dim: int
    image_size: int
    mean: np.ndarray  # (3,) per-channel normalisation of the model's eval transform
    std: np.ndarray
    resample: int
    batch_size: int = 64

    def pixels(self, image: PILImage.Image) -> np.ndarray:
        """open_clip's eval transform in PIL + numpy: short side to S (int(), as torchvision),
        centre crop (round(), as torchvision), RGB, /255, normalise. (3, S, S) float32."""
        size = self.image_size
        width, height = image.size
        if width <= height:
            new_w, new_h = size, int(size * height / width)
        else:
            new_w, new_h = int(size * width / height), size
        if (new_w, new_h) != (width, height):
            image = image.resize((new_w, new_h), self.resample)
        top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
        image = image.crop((left, top, left + size, top + size)).convert("RGB")
        array = np.asarray(image, dtype=np.float32) / 255.0
        return ((array - self.mean) / self.std).transpose(2, 0, 1).astype(np.float32)

    def embed_images(self, images: Sequence, *, progress: bool = False) -> np.ndarray:
        """PIL images -> (n, dim) L2-normalised float32."""
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            batch = np.stack([self.pixels(im) for im in images[start : start + self.batch_size]])
            out[start : start + len(batch)] = _normalise(self.image_session.run(None, {"pixels": batch})[0])
        return out

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Strings -> (n, dim) L2-normalised float32 (truncated to the context length)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[start : start + self.batch_size]))
            out[start : start + len(tokens)] = _normalise(self.text_session.run(None, {"tokens": tokens})[0])
        return out


def _normalise(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    return (array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def open_session(path: Path, *, threads: int = 1):
    """An inference session and the metadata written by the export (strings)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0 = onnxruntime's default (all cores)
    options.inter_op_num_threads = 1
    # One query at a time: the arena would keep its high-water mark of every batch size seen.
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types for unreadable files
        raise EncoderUnavailable(f"cannot read the ONNX export {path}: {exc}") from exc
    return session, dict(session.get_modelmeta().custom_metadata_map)


def check_meta(meta: dict, *, path: Path, tower: str, model_name: str, version: str) -> None:
    """Refuse an export of another format, tower, model or model version (OnnxMismatch)."""
    fix = "re-export it with `python manage.py search_export_onnx` (train_clip and prepare_demo write it too)"
    if meta.get("atlas_format") != FORMAT or meta.get("tower") != tower:
        raise OnnxMismatch(
            f"{path} is not an Atlas {tower}-tower export of format {FORMAT} "
            f"(format {meta.get('atlas_format')!r}, tower {meta.get('tower')!r}): {fix}"
        )
    if meta.get("model_name") != model_name or meta.get("model_version") != version:
        raise OnnxMismatch(
            f"{path} was exported from {meta.get('model_version')!r}, but the configured model is {version!r}: "
            f"its vectors would not match the index. {fix}"
        )


@functools.cache
def load_onnx_encoder(model_name: str, pretrained: str, threads: int = 1, batch_size: int = 64) -> OnnxEncoder:
    """Both towers of the configured model, once per process; refuses exports of another version."""
    if not Path(pretrained).is_file():
        raise EncoderUnavailable(
            f"checkpoint {pretrained!r} does not exist. Train the offline model with "
            "`python manage.py train_clip --preset fast`, or point SEARCH_CLIP_PRETRAINED at a local checkpoint file."
        )
    paths = onnx_paths(model_name, pretrained)
    for path in paths.values():
        if not path.is_file():
            raise EncoderUnavailable(
                f"no ONNX export of the search model at {path}: run `python manage.py search_export_onnx` "
                "(or set SEARCH_QUERY_RUNTIME=torch)"
            )
    encoder = onnx_encoder_open(paths, model_name=model_name, version=model_version(model_name, pretrained),
                                threads=threads, batch_size=batch_size)
    logger.info("loaded the ONNX query encoder %s (dim %d)", encoder.version, encoder.dim)
    return encoder


def onnx_encoder_open(paths: dict[str, Path], *, model_name: str, version: str, threads: int = 1, batch_size: int = 64) -> OnnxEncoder:
    """An encoder from two exported files, after checking that both belong to `version`."""
    sessions, metas = {}, {}
    for tower, path in paths.items():
        sessions[tower], metas[tower] = open_session(path, threads=threads)
        check_meta(metas[tower], path=path, tower=tower, model_name=model_name, version=version)
    image, text = metas["image"], metas["text"]
    tokenizer = ClipTokenizer(context_length=int(text["context_length"]))
    if file_sha256(tokenizer.bpe_path) != text["bpe_sha256"]:
        raise OnnxMismatch(f"the tokenizer vocabulary {tokenizer.bpe_path} is not the one the model was exported with")
    return OnnxEncoder(
        image_session=sessions["image"],
        text_session=sessions["text"],
        tokenizer=tokenizer,
        version=version,
        dim=int(image["dim"]),
        image_size=int(image["image_size"]),
        mean=np.asarray(json.loads(image["mean"]), dtype=np.float32),
        std=np.asarray(json.loads(image["std"]), dtype=np.float32),
        resample=RESAMPLING[image["interpolation"]],
        batch_size=batch_size,
    )


def onnx_export_problem(model_name: str, pretrained: str) -> str:
    """Why the ONNX exports cannot serve this model ("" when they can). No checkpoint yet is
    no problem of the exports: search is simply not ready, whichever the runtime."""
    if not Path(pretrained).is_file():
        return ""
    try:
        load_onnx_encoder.__wrapped__(model_name, pretrained, 1)
    except EncoderUnavailable as exc:
        return str(exc)
    return ""
