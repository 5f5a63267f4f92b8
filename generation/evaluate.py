"""GAN evaluation: Frechet distance and KID between real and generated feature sets.

The feature extractor is pluggable and every score carries its extractor's name, so a
Frechet distance on our own encoder is never mistaken for an Inception FID:

- `InceptionPool3(weights_path)`: torchvision's Inception-V3 architecture with weights read
  ONLY from a local file given explicitly (nothing is downloaded); 2048-d pool3 features.
  Note: torchvision's ImageNet weights are not the TF-FID weights, so even this FID is
  comparable only with FIDs computed the same way.
- `CropEncoder`: the project's own small CNN, trained here on the real training crops to
  predict condition and skin type; its 128-d penultimate layer is the feature.

Django-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


# --- metrics -----------------------------------------------------------------------------
def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^1/2).

    Tr((S1 S2)^1/2) = Tr((S1^1/2 S2 S1^1/2)^1/2): the inner matrix is symmetric PSD, so its
    square root comes from `eigh` without the complex round-off of a general sqrtm.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("the two feature sets have different dimensions")
    root1 = _sqrt_psd(sigma1)
    inner = root1 @ sigma2 @ root1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=np.float64)
    if len(features) < 2:
        raise ValueError("need at least two feature vectors")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def fd_of_features(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(*feature_stats(a), *feature_stats(b))


def kid(a: np.ndarray, b: np.ndarray, *, subsets: int = 50, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel
    (x.y / d + 1)^3, averaged over random subsets; returns (mean, std)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError("KID needs at least two samples per set")
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(subsets):
        x, y = a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        off = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        scores.append(off - 2 * kxy.mean())
    return float(np.mean(scores)), float(np.std(scores))


# --- feature extractors ----------------------------------------------------------------
class FeatureExtractor(Protocol):
    name: str

    def __call__(self, images: torch.Tensor) -> np.ndarray:  # uint8 N x 3 x H x W -> N x d
        ...


_IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class InceptionPool3:
    """Inception-V3 pool3 (2048-d) with weights from a local file only."""

    def __init__(self, weights_path: Path, *, device: str = "cpu", batch_size: int = 32) -> None:
        from torchvision.models import inception_v3

        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"Inception-V3 weights file not found: {path} (nothing is downloaded)")
        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        net.fc = nn.Identity()
        self.net, self.device, self.batch_size = net.eval().to(device), device, batch_size
        self.name = f"inception-v3-pool3[{path.name}]"

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        out = []
        for chunk in images.split(self.batch_size):
            x = F.interpolate(chunk.float() / 255, size=(299, 299), mode="bilinear", align_corners=False)
            out.append(self.net(((x - _IMAGENET_MEAN) / _IMAGENET_STD).to(self.device)).cpu())
        return torch.cat(out).numpy()


class CropEncoderNet(nn.Module):
    """Four conv blocks at 64x64 -> 128-d feature; two heads (condition, skin type) for training."""

    def __init__(self, n_conditions: int, n_skin_types: int = 6, width: int = 32, dim: int = 128) -> None:
        super().__init__()
        chans = [3, width, width * 2, width * 4, width * 4]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans, chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(True), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(chans[-1], dim), nn.ReLU(True))
        self.condition_head = nn.Linear(dim, n_conditions)
        self.skin_head = nn.Linear(dim, n_skin_types)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@dataclass
class CropEncoder:
    """The project's own extractor (used when no Inception weights file is given)."""

    net: CropEncoderNet
    name: str
    size: int = 64

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        self.net.eval()
        out = []
        for chunk in images.split(128):
            x = chunk.float() / 127.5 - 1
            if x.shape[-1] != self.size:
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
            out.append(self.net(x))
        return torch.cat(out).numpy()

    def save(self, path: Path) -> None:
        torch.save({"name": self.name, "size": self.size, "n_conditions": self.net.condition_head.out_features,
                    "state": self.net.state_dict()}, path)

    @classmethod
    def load(cls, path: Path) -> CropEncoder:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = CropEncoderNet(state["n_conditions"])
        net.load_state_dict(state["state"])
        return cls(net.eval(), state["name"], state["size"])


def crop_encoder_train(
    images: torch.Tensor, conditions: torch.Tensor, skin_types: torch.Tensor, *, n_conditions: int,
    steps: int = 400, batch_size: int = 32, seed: int = 0, name: str = "atlas-crop-encoder",
) -> CropEncoder:
    """Train the encoder to tell condition and skin type apart on real crops (uint8 N x 3 x S x S;
    skin types 1-6), so its features see what the GAN must get right."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = CropEncoderNet(n_conditions)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    x_all = F.interpolate(images.float() / 127.5 - 1, size=(64, 64), mode="bilinear", align_corners=False)
    net.train()
    for _ in range(steps):
        idx = torch.randint(len(x_all), (batch_size,), generator=gen)
        x = x_all[idx]
        flip = torch.rand(batch_size, generator=gen) < 0.5
        x[flip] = x[flip].flip(-1)
        feats = net(x)
        loss = F.cross_entropy(net.condition_head(feats), conditions[idx]) + F.cross_entropy(
            net.skin_head(feats), skin_types[idx] - 1
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return CropEncoder(net.eval(), f"{name}(128-d, {steps} steps)")


@dataclass(frozen=True)
class Score:
    extractor: str
    n_real: int
    n_fake: int
    fd: float
    kid_mean: float
    kid_std: float

    def as_dict(self) -> dict:
        return {"extractor": self.extractor, "n_real": self.n_real, "n_fake": self.n_fake,
                "fd": round(self.fd, 4), "kid": round(self.kid_mean, 6), "kid_std": round(self.kid_std, 6)}


def score(real: torch.Tensor, fake: torch.Tensor, extractor: FeatureExtractor, *, kid_subsets: int = 50) -> Score:
    """FD and KID between two uint8 image sets, reported with the extractor's name."""
    a, b = extractor(real), extractor(fake)
    k_mean, k_std = kid(a, b, subsets=kid_subsets, subset_size=min(1000, len(a), len(b)))
    return Score(extractor.name, len(a), len(b), fd_of_features(a, b), k_mean, k_std)


def bootstrap_interval(values: list[float]) -> float:
    """1.96 standard deviations, as the patent's Table 1 reports (0 for a single trial)."""
    return 1.96 * float(np.std(values)) if len(values) > 1 else 0.0

