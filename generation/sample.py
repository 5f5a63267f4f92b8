"""Sampling: from (condition, skin type, lesion size, location) or an edited real map to images.

A checkpoint is loaded only after it has been checked: a file that torch cannot read, one
that is not a DermGAN checkpoint, or one whose condition vocabulary disagrees with the
catalogue is refused with a `CheckpointError` that says why, and nothing is generated.

Django-free: the catalogue's slugs are passed in as `catalogue`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from generation.dataset import to_float, to_uint8
from generation.networks import define_G
from generation.semantic_map import MapError, MapSpec, centred_box, check_skin_type, condition_code, decode, encode
from generation.train import CHECKPOINT_FORMAT, pick_device

_REQUIRED = ("generator", "vocabulary", "skin_types", "image_size", "config", "data_fingerprint", "step")


class CheckpointError(ValueError):
    """A checkpoint we refuse to use; the message explains why."""


@dataclass
class LoadedGenerator:
    net: torch.nn.Module
    vocabulary: tuple[str, ...]
    image_size: int
    meta: dict  # everything the checkpoint says about itself except the weights
    path: Path
    device: torch.device

    @property
    def name(self) -> str:
        return f"{self.path.name}@{self.meta['step']}"


def checkpoint_read(path: Path) -> dict:
    """The checkpoint's contents, or CheckpointError (weights_only: a checkpoint cannot run code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged or foreign file
        raise CheckpointError(f"{path.name} is not a readable checkpoint (corrupt or truncated?): {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path.name} is not a {CHECKPOINT_FORMAT} file")
    missing = [key for key in _REQUIRED if key not in state]
    if missing or "state" not in state["generator"]:
        raise CheckpointError(f"{path.name} lacks {', '.join(missing) or 'generator weights'}")
    return state


def check_vocabulary(vocabulary: Sequence[str], catalogue: Iterable[str] | None) -> None:
    """Refuse a checkpoint whose conditions the catalogue no longer has: its codes would then
    label images with conditions that do not exist (or, after a rename, the wrong ones)."""
    if catalogue is None:
        return
    unknown = sorted(set(vocabulary) - set(catalogue))
    if unknown:
        raise CheckpointError(
            f"the checkpoint's condition vocabulary does not match the catalogue: {', '.join(unknown)} "
            "are not catalogue conditions; retrain on the current catalogue"
        )


def generator_load(
    path: Path, *, catalogue: Iterable[str] | None = None, device: str = "auto", channels_last: bool = False
) -> LoadedGenerator:
    state = checkpoint_read(path)
    check_vocabulary(state["vocabulary"], catalogue)
    spec = state["generator"]
    try:
        net = define_G(spec["name"], **spec["args"])
        net.load_state_dict({k: v.float() for k, v in spec["state"].items()})
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{Path(path).name}: weights do not fit the model it describes: {exc}") from exc
    dev = pick_device(device)
    net = net.to(dev).eval()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    meta = {k: v for k, v in state.items() if k not in ("generator", "discriminator", "optimizers", "rng", "history")}
    meta["generator"] = {"name": spec["name"], "args": spec["args"]}
    return LoadedGenerator(net, tuple(state["vocabulary"]), int(state["image_size"]), meta, Path(path), dev)


def generator_export(src: Path, dst: Path, *, half: bool = True, extra: dict | None = None) -> Path:
    """A small sampling-only copy of a checkpoint (fp16 weights by default), e.g. to ship."""
    state = checkpoint_read(src)
    keep = {k: v for k, v in state.items() if k not in ("discriminator", "optimizers", "rng", "history")}
    weights = state["generator"]["state"]
    if half:
        weights = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    keep["generator"] = {**state["generator"], "state": weights}
    keep["export"] = {"from": Path(src).name, "half": half, **(extra or {})}
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    torch.save(keep, dst)
    return Path(dst)


def spec_map(
    gen: LoadedGenerator, *, condition: str, skin_type: int, size: float = 0.4, centre: tuple[float, float] = (0.5, 0.5)
) -> np.ndarray:
    """A one-box map at the generator's resolution; raises MapError on bad input."""
    condition_code(condition, gen.vocabulary)
    check_skin_type(skin_type)
    box = centred_box(size=size, width=gen.image_size, height=gen.image_size, centre=centre)
    spec = MapSpec(condition=condition, skin_type=skin_type, boxes=(box,))
    return encode(spec, width=gen.image_size, height=gen.image_size, vocabulary=gen.vocabulary)


def decode_check(semantic_map: np.ndarray, gen: LoadedGenerator) -> MapSpec:
    """Check a map given from outside (e.g. an edited real map) fits this generator."""
    if semantic_map.shape != (gen.image_size, gen.image_size, 3):
        raise MapError(f"maps must be {gen.image_size}x{gen.image_size}x3 for this generator, got {semantic_map.shape}")
    return decode(semantic_map, vocabulary=gen.vocabulary)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated
    and slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@torch.inference_mode()
def generate(
    gen: LoadedGenerator, maps: Sequence[np.ndarray], *, seed: int = 0, stochastic: bool = True, batch_size: int = 16,
    shared_noise: bool = False, bf16: bool = False,
) -> list[PILImage.Image]:
    """One image per map. A generator with a noise input draws it from `seed` (different
    seeds, different lesions); an older one keeps pix2pix's dropout on as its noise source
    when `stochastic`. Either way the seed makes the batch reproducible. `shared_noise` gives
    every map the same noise draw, so a sweep changes only what its maps change. `bf16` runs
    the network under bfloat16 autocast (on CPUs with native bf16; tests/generation/test_bf16.py
    bounds its difference from fp32)."""
    for m in maps:
        if m.shape != (gen.image_size, gen.image_size, 3):
            raise ValueError(f"maps must be {gen.image_size}x{gen.image_size}x3 for this generator, got {m.shape}")
    torch.manual_seed(seed)
    gen.net.eval()
    if stochastic:
        for module in gen.net.modules():
            if isinstance(module, torch.nn.Dropout):
                module.train()
    noise_gen = torch.Generator().manual_seed(seed)
    noisy = getattr(gen.net, "noise_nc", 0) > 0
    out: list[PILImage.Image] = []
    for start in range(0, len(maps), batch_size):
        batch = torch.from_numpy(np.stack(maps[start : start + batch_size])).permute(0, 3, 1, 2)
        inputs = to_float(batch).to(gen.device)
        if noisy:
            n = 1 if shared_noise else len(batch)
            noise = gen.net.draw_noise(n, gen.image_size, gen.image_size, generator=noise_gen, device=gen.device)
            if shared_noise:
                noise_gen.manual_seed(seed)  # the next batch draws the same
            noise = noise.expand(len(batch), -1, -1, -1)
        with torch.autocast(gen.device.type, dtype=torch.bfloat16, enabled=bf16):
            fake = gen.net(inputs, noise) if noisy else gen.net(inputs)
        fake = to_uint8(fake.float().cpu()).permute(0, 2, 3, 1).numpy()
        out.extend(PILImage.fromarray(img) for img in fake)
    gen.net.eval()
    return out


def grid(rows: Sequence[Sequence[PILImage.Image]], *, pad: int = 2) -> PILImage.Image:
    """Paste equally sized images into a grid (rows x columns), white gutters."""
    h, w = rows[0][0].height, rows[0][0].width
    cols = max(len(r) for r in rows)
    sheet = PILImage.new("RGB", (cols * (w + pad) + pad, len(rows) * (h + pad) + pad), "white")
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            sheet.paste(img, (pad + j * (w + pad), pad + i * (h + pad)))
    return sheet
