"""DermGAN's four generator loss terms and the discriminator loss.

Every term has its own weight and comes back separately (already weighted), so training can
log each and the ablation can switch one off by setting its weight to zero.

Django-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LossWeights:
    l1: float = 100.0  # L1 over the whole image (pix2pix lambda_L1)
    roi: float = 100.0  # L1 inside the condition's boxes (patent adaptation 2)
    feature_matching: float = 10.0  # L2 at D's second-to-last layer (adaptation 3)
    gan: float = 1.0  # adversarial (min-max) term
    mode_seeking: float = 0.0  # diversity term for the noise input (0 = off, the patent's setup)
    classifier: float = 0.0  # auxiliary condition classifier's cross-entropy on G's output (0 = off, the patent's)


class GANLoss(nn.Module):
    """'vanilla' = BCE with logits (pix2pix default); 'lsgan' = least squares."""

    def __init__(self, mode: str = "vanilla") -> None:
        super().__init__()
        if mode not in ("vanilla", "lsgan"):
            raise ValueError(f"unknown GAN loss {mode!r}: use vanilla or lsgan")
        self.mode = mode

    def forward(self, logits: torch.Tensor | list[torch.Tensor], target_is_real: bool) -> torch.Tensor:
        if isinstance(logits, (list, tuple)):  # a multi-scale D: the mean over its scales
            return torch.stack([self(x, target_is_real) for x in logits]).mean()
        target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)


def roi_mask(semantic_map: torch.Tensor) -> torch.Tensor:
    """Bx1xHxW float mask of the ROI: where G or B is non-zero (above -1 after scaling to [-1, 1])."""
    return (semantic_map[:, 1:3].amax(dim=1, keepdim=True) > -1.0 + 0.5 / 127.5).to(semantic_map.dtype)


def l1_whole(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(fake, real)


def l1_roi(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over ROI pixels only (zero when there is no ROI)."""
    covered = mask.sum() * fake.shape[1]
    return ((fake - real).abs() * mask).sum() / covered.clamp(min=1.0)


def feature_matching(fake_features, real_features) -> torch.Tensor:
    """L2 (mean squared) between D activations of generated and real pairs; real side is a target.
    Lists (a multi-scale D) give the mean over scales."""
    if isinstance(fake_features, (list, tuple)):  # scales and/or layers: the mean over all of them
        return torch.stack([feature_matching(f, r) for f, r in zip(fake_features, real_features)]).mean()
    return F.mse_loss(fake_features, real_features.detach())


def mode_seeking(fake_a: torch.Tensor, fake_b: torch.Tensor, noise_a: torch.Tensor, noise_b: torch.Tensor,
                 eps: float = 1e-5) -> torch.Tensor:
    """Mode-seeking term (Mao et al., CVPR 2019): two images of the same maps from two noise
    draws should differ in proportion to their noise. Minimising 1 / ratio pushes G to use
    the noise instead of collapsing onto one image per map.

    The images are compared after removing each one's mean colour: otherwise the cheapest way
    to differ is a global colour cast (pink, green or orange skin in run demo-v2 after 250
    steps), which is exactly the variety we do not want; this way only structure (lesion shape,
    texture, shading) counts."""
    a = fake_a - fake_a.mean(dim=(2, 3), keepdim=True)
    b = fake_b - fake_b.mean(dim=(2, 3), keepdim=True)
    ratio = (a - b).abs().mean() / (noise_a - noise_b).abs().mean().clamp(min=eps)
    return 1.0 / (ratio + eps)


def generator_losses(
    *,
    fake: torch.Tensor,
    real: torch.Tensor,
    semantic_map: torch.Tensor,
    fake_logits: torch.Tensor,
    fake_features: torch.Tensor,
    real_features: torch.Tensor | None,
    weights: LossWeights,
    gan_loss: GANLoss,
    noise: torch.Tensor | None = None,
    class_logits: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The weighted terms and their sum under "total". A term with weight 0 is reported as 0
    and not computed (feature matching then needs no real_features).

    Mode seeking needs `noise` and a batch whose second half repeats the first half's maps
    with other noise (the trainer builds it so)."""
    zero = fake.new_zeros(())
    half = fake.shape[0] // 2
    if weights.mode_seeking and noise is not None and half:
        ms = weights.mode_seeking * mode_seeking(fake[:half], fake[half:2 * half], noise[:half], noise[half:2 * half])
    else:
        ms = zero
    terms = {
        "l1": weights.l1 * l1_whole(fake, real) if weights.l1 else zero,
        "roi": weights.roi * l1_roi(fake, real, roi_mask(semantic_map)) if weights.roi else zero,
        "fm": weights.feature_matching * feature_matching(fake_features, real_features)
        if weights.feature_matching and real_features is not None
        else zero,
        "gan": weights.gan * gan_loss(fake_logits, True) if weights.gan else zero,
        "ms": ms,
        "cls": weights.classifier * F.cross_entropy(class_logits, labels)
        if weights.classifier and class_logits is not None
        else zero,
    }
    terms["total"] = terms["l1"] + terms["roi"] + terms["fm"] + terms["gan"] + terms["ms"] + terms["cls"]
    return terms


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, gan_loss: GANLoss) -> torch.Tensor:
    """pix2pix halves D's loss so it learns more slowly than G."""
    return 0.5 * (gan_loss(real_logits, True) + gan_loss(fake_logits, False))
