"""The open_clip image/text encoder (Django-free).

`load_encoder(model_name, pretrained, device)` builds the model once per process and
argument set (functools.cache); callers pass values read from settings. Vectors come back
L2-normalised float32, so inner product = cosine similarity. Nothing here downloads: a hub
tag without a local copy is refused with a message that says what to do instead.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
# Counted so tests (and curious operators) can see that weights load once per process.
LOAD_COUNT = 0


class EncoderUnavailable(RuntimeError):
    """The configured model cannot be loaded; the message says why and what to do."""


@dataclass
class Encoder:
    model: Any  # open_clip.CLIP in eval mode
    preprocess: Any  # PIL image -> normalised tensor, open_clip's eval transform
    tokenizer: Any
    device: str
    version: str  # recorded with every stored vector
    dim: int
    batch_size: int = 64

    def embed_images(self, images: Sequence, *, progress: bool = False) -> np.ndarray:
        """PIL images -> (n, dim) L2-normalised float32."""
        import torch
        from tqdm import tqdm

        out = np.zeros((len(images), self.dim), dtype=np.float32)
        starts = range(0, len(images), self.batch_size)
        for start in tqdm(starts, desc="embedding images", unit="batch", disable=not progress):
            batch = torch.stack([self.preprocess(im) for im in images[start : start + self.batch_size]])
            with torch.inference_mode():
                features = self.model.encode_image(batch.to(self.device))
            out[start : start + len(batch)] = _normalise(features)
        return out

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Strings -> (n, dim) L2-normalised float32 (the tokenizer truncates to the context length)."""
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[start : start + self.batch_size]))
            with torch.inference_mode():
                features = self.model.encode_text(tokens.to(self.device))
            out[start : start + len(tokens)] = _normalise(features)
        return out


def _normalise(features) -> np.ndarray:
    array = features.float().cpu().numpy()
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return (array / np.maximum(norms, 1e-12)).astype(np.float32)


def register_model_configs() -> None:
    """Make our JSON configs (atlas-clip-rn, atlas-clip-tiny) known to open_clip; idempotent."""
    import open_clip

    if not any(name in open_clip.list_models() for name in _our_config_names()):
        open_clip.add_model_config(MODEL_CONFIG_DIR)


def _our_config_names() -> list[str]:
    return [path.stem for path in MODEL_CONFIG_DIR.glob("*.json")]


def resolve_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_version(model_name: str, pretrained: str) -> str:
    """A short identity for vectors: name + the checkpoint's content hash (or the hub tag)."""
    if pretrained and os.path.isfile(pretrained):
        return f"{model_name}@{file_sha256(pretrained)[:12]}"
    return f"{model_name}:{pretrained or 'random'}"


@functools.cache
def load_encoder(model_name: str, pretrained: str, device: str = "auto", batch_size: int = 64, threads: int = 0) -> Encoder:
    """Build the model once per (name, checkpoint, device) in this process.

    `threads` > 0 sets torch's intra-op CPU threads for the process (0 keeps torch's default).
    """
    global LOAD_COUNT
    import open_clip
    import torch

    register_model_configs()
    _check_offline_source(model_name, pretrained)
    device = resolve_device(device)
    if threads > 0 and device == "cpu":
        torch.set_num_threads(threads)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained, device=device)
    except RuntimeError as exc:
        raise EncoderUnavailable(f"could not load open_clip model {model_name!r} from {pretrained!r}: {exc}") from exc
    model.eval()
    LOAD_COUNT += 1
    with torch.inference_mode():
        dim = int(model.encode_text(open_clip.get_tokenizer(model_name)(["x"]).to(device)).shape[-1])
    version = model_version(model_name, pretrained)
    logger.info("loaded open_clip %s on %s (version %s, dim %d)", model_name, device, version, dim)
    return Encoder(
        model=model,
        preprocess=preprocess,
        tokenizer=open_clip.get_tokenizer(model_name),
        device=device,
        version=version,
        dim=dim,
        batch_size=batch_size,
    )


def _check_offline_source(model_name: str, pretrained: str) -> None:
    import open_clip

    if model_name not in open_clip.list_models():
        raise EncoderUnavailable(f"unknown open_clip model {model_name!r}; known: {', '.join(open_clip.list_models()[:8])}, ...")
    if not pretrained:
        raise EncoderUnavailable(
            "no weights configured (SEARCH_CLIP_PRETRAINED is empty); a random model would return noise"
        )
    if os.path.isfile(pretrained):
        return
    tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if not tag_cfg:
        raise EncoderUnavailable(
            f"checkpoint {pretrained!r} does not exist. Train the offline model with "
            "`python manage.py train_clip --preset fast`, or point SEARCH_CLIP_PRETRAINED at a local checkpoint file."
        )
    if not _hub_tag_cached(tag_cfg):
        raise EncoderUnavailable(
            f"{pretrained!r} is an open_clip hub tag and no local copy of its weights exists; this service never "
            "downloads weights. Download the checkpoint elsewhere and set SEARCH_CLIP_PRETRAINED to its file path."
        )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the cached copy must be used as is


def _hub_tag_cached(tag_cfg: dict) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    repo = (tag_cfg.get("hf_hub") or "").rstrip("/")
    if not repo:
        return False
    for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "open_clip_pytorch_model.safetensors"):
        if isinstance(try_to_load_from_cache(repo, filename), str):
            return True
    return False
