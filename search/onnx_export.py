"""Export the search model's two towers to ONNX for the web processes (Django-free; uses torch).

`export_onnx(model_name=..., pretrained=...)` writes `<checkpoint stem>.image.onnx` and
`<checkpoint stem>.text.onnx` beside the checkpoint, each stamped with the model version
(name + checkpoint hash) that search/onnx_runtime.py checks at load. Before a file is put in
place, the exported towers run through onnxruntime beside torch on sample images and texts
(the runtime's own preprocessing and tokenizer against open_clip's): a cosine below
MIN_COSINE on any sample refuses the export, so a silently wrong graph never ships.

Only what the runtime reimplements is accepted: open_clip's eval transform (resize short side,
centre crop, to RGB, to tensor, normalise) and its SimpleTokenizer with "lower" cleaning.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.encoder import EncoderUnavailable, file_sha256, load_encoder, model_version
from search.onnx_runtime import FORMAT, RESAMPLING, OnnxEncoder, _normalise, onnx_encoder_open, onnx_export_problem, onnx_paths

MIN_COSINE = 0.999
OPSET = 17
SAMPLE_TEXTS = (
    "melanoma",
    "psoriasis on dark brown skin",
    "a clinical photograph of eczema on the forearm, Fitzpatrick type V",
    "Ringworm?? café-au-lait  spots &amp; naevi",
    "scaly red patch " * 20,  # longer than the context: truncated the same way
    "",
)


@dataclass
class ExportReport:
    model_version: str
    paths: dict[str, Path]
    image_cosine: float  # the lowest cosine between ONNX and torch vectors over the samples
    text_cosine: float
    seconds: float


def onnx_ensure(model_name: str, pretrained: str) -> ExportReport | None:
    """Export when the files are missing or belong to another version; None when they were current."""
    if not onnx_export_problem(model_name, pretrained):
        return None
    return export_onnx(model_name=model_name, pretrained=pretrained)


def export_onnx(*, model_name: str, pretrained: str) -> ExportReport:
    """Export, verify against torch, then put both files in place (temp + rename)."""
    import torch

    started = time.monotonic()
    try:
        # Not the process's cached encoder: a checkpoint retrained at the same path would be
        # exported from the old weights under the new version.
        encoder = load_encoder.__wrapped__(model_name, pretrained, "cpu")
    except EncoderUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - torch.load raises pickle, zip and key errors for a bad file
        raise EncoderUnavailable(f"cannot load {pretrained} as a {model_name} checkpoint: {exc}") from exc
    model = encoder.model
    image_meta = _image_transform(encoder.preprocess)
    text_meta = _text_tokenizer(encoder.tokenizer)
    version = model_version(model_name, pretrained)
    base = {"atlas_format": FORMAT, "model_name": model_name, "model_version": version, "dim": str(encoder.dim),
            "checkpoint_sha256": file_sha256(pretrained), "torch_version": torch.__version__,
            "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    paths = onnx_paths(model_name, pretrained)
    temps = {tower: path.with_name(f".{path.name}.tmp") for tower, path in paths.items()}
    size = int(image_meta["image_size"])
    try:
        _export(_tower(model, "encode_image"), torch.zeros(2, 3, size, size), "pixels", temps["image"], {**base, **image_meta, "tower": "image"})
        tokens = encoder.tokenizer(["a b", "c"])
        _export(_tower(model, "encode_text"), tokens, "tokens", temps["text"], {**base, **text_meta, "tower": "text"})
        candidate = onnx_encoder_open(temps, model_name=model_name, version=version)
        image_cos = _min_cosine(candidate.embed_images(_sample_images(size)), encoder.embed_images(_sample_images(size)))
        text_cos = _min_cosine(candidate.embed_texts(SAMPLE_TEXTS), encoder.embed_texts(SAMPLE_TEXTS))
        _check_tokens(candidate, encoder)
        if min(image_cos, text_cos) < MIN_COSINE:
            raise EncoderUnavailable(
                f"the ONNX export of {version} disagrees with torch (lowest cosine: images {image_cos:.5f}, "
                f"texts {text_cos:.5f}; {MIN_COSINE} needed): not installed"
            )
        for tower in ("image", "text"):  # the text tower last: a reader between the two renames sees a mismatch, never a mix
            os.replace(temps[tower], paths[tower])
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
    return ExportReport(version, paths, image_cos, text_cos, round(time.monotonic() - started, 1))


def _tower(model, method: str):
    """A torch module around one encode_* method of the model (what torch.onnx.export traces)."""
    import torch

    class Tower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x):
            return getattr(self.model, method)(x)

    return Tower().eval()


def _export(module, example, input_name: str, path: Path, meta: dict) -> None:
    import onnx
    import torch

    # Grad on: without it nn.MultiheadAttention takes its fused inference kernel, which the
    # exporter cannot write. Constant folding off: with it and a dynamic batch, torch 2.14's
    # TorchScript exporter wrote a wrong attention-pool graph for the ResNet tower (cosine ~0.3).
    with torch.inference_mode(False), torch.enable_grad(), warnings.catch_warnings():
        # The exporter warns that it is the legacy one and that indexing with negative indices
        # would be wrong; the text tower's indices come from argmax (never negative), and the
        # export is checked against torch before it is installed.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator", category=UserWarning)
        torch.onnx.export(
            module, (example,), str(path), dynamo=False, opset_version=OPSET, do_constant_folding=False,
            input_names=[input_name], output_names=["features"],
            dynamic_axes={input_name: {0: "n"}, "features": {0: "n"}},
        )
    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, {key: str(value) for key, value in meta.items()})
    onnx.save(graph, str(path))


def _image_transform(preprocess) -> dict:
    """The eval transform's parameters, refusing any step the runtime does not reproduce."""
    steps = list(getattr(preprocess, "transforms", []))
    names = [type(step).__name__ for step in steps]
    if names != ["Resize", "CenterCrop", "MaybeConvertMode", "MaybeToTensor", "Normalize"]:
        raise EncoderUnavailable(f"the model's image transform ({', '.join(names)}) is not one the ONNX runtime reproduces")
    resize, crop, _, _, normalize = steps
    interpolation = resize.interpolation.value
    crop_size = crop.size if isinstance(crop.size, (tuple, list)) else (crop.size, crop.size)
    resize_size = resize.size[0] if isinstance(resize.size, (tuple, list)) and len(resize.size) == 1 else resize.size
    if not isinstance(resize_size, int) or resize.max_size is not None or interpolation not in RESAMPLING:
        raise EncoderUnavailable(f"the model's resize ({resize}) is not one the ONNX runtime reproduces")
    if crop_size[0] != crop_size[1] or crop_size[0] != resize_size or getattr(steps[2], "mode", "RGB") != "RGB":
        raise EncoderUnavailable(f"the model's crop ({crop}) is not a square of the resized side")
    return {"image_size": str(resize_size), "interpolation": interpolation,
            "mean": json.dumps([float(x) for x in normalize.mean]), "std": json.dumps([float(x) for x in normalize.std])}


def _text_tokenizer(tokenizer) -> dict:
    from search.clip_tokenizer import default_bpe_path

    clean = getattr(getattr(tokenizer, "clean_fn", None), "__name__", "")
    if type(tokenizer).__name__ != "SimpleTokenizer" or clean != "_clean_lower" or tokenizer.reduction_fn is not None:
        raise EncoderUnavailable(f"the model's tokenizer ({type(tokenizer).__name__}, {clean}) is not CLIP's BPE with lower-case cleaning")
    return {"context_length": str(tokenizer.context_length), "tokenizer": "clip-bpe", "bpe_sha256": file_sha256(default_bpe_path())}


def _check_tokens(candidate: OnnxEncoder, encoder) -> None:
    ours, theirs = candidate.tokenizer(SAMPLE_TEXTS), encoder.tokenizer(list(SAMPLE_TEXTS)).numpy()
    if not np.array_equal(ours, theirs):
        raise EncoderUnavailable("the torch-free tokenizer disagrees with open_clip's on the sample texts: not installed")


def _sample_images(size: int) -> list:
    """Deterministic pictures of several shapes and modes: noise, gradients, a flat colour."""
    from PIL import Image

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 300, dtype=np.float32)
    gradient = np.stack([np.tile(ramp, (200, 1)), np.tile(ramp[:200, None], (1, 300)), np.full((200, 300), 90.0)], axis=2)
    return [
        Image.fromarray(rng.integers(0, 256, (size * 2, size * 2, 3), dtype=np.uint8)),
        Image.fromarray(gradient.astype(np.uint8)),
        Image.fromarray(rng.integers(0, 256, (size + 37, size // 2 + 11, 3), dtype=np.uint8)),
        Image.new("RGB", (size, size), (180, 120, 90)),
        Image.fromarray(rng.integers(0, 256, (size, size + 5), dtype=np.uint8)),  # grey (mode L)
    ]


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((_normalise(a) * _normalise(b)).sum(axis=1).min())
