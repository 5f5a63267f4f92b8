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


class GANLoss(nn.Module):
    """'vanilla' = BCE with logits (pix2pix default); 'lsgan' = least squares."""

    def __init__(self, mode: str = "vanilla") -> None:
        super().__init__()
        if mode not in ("vanilla", "lsgan"):
            raise ValueError(f"unknown GAN loss {mode!r}: use vanilla or lsgan")
        self.mode = mode

    def forward(self, logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
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


def feature_matching(fake_features: torch.Tensor, real_features: torch.Tensor) -> torch.Tensor:
    """L2 (mean squared) between D activations of generated and real pairs; real side is a target."""
    return F.mse_loss(fake_features, real_features.detach())


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
) -> dict[str, torch.Tensor]:
    """The weighted terms and their sum under "total". A term with weight 0 is reported as 0
    and not computed (feature matching then needs no real_features)."""
    zero = fake.new_zeros(())
    terms = {
        "l1": weights.l1 * l1_whole(fake, real) if weights.l1 else zero,
        "roi": weights.roi * l1_roi(fake, real, roi_mask(semantic_map)) if weights.roi else zero,
        "fm": weights.feature_matching * feature_matching(fake_features, real_features)
        if weights.feature_matching and real_features is not None
        else zero,
        "gan": weights.gan * gan_loss(fake_logits, True) if weights.gan else zero,
    }
    terms["total"] = terms["l1"] + terms["roi"] + terms["fm"] + terms["gan"]
    return terms


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, gan_loss: GANLoss) -> torch.Tensor:
    """pix2pix halves D's loss so it learns more slowly than G."""
    return 0.5 * (gan_loss(real_logits, True) + gan_loss(fake_logits, False))
