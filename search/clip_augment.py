"""Training-time augmentation for the search model that keeps the skin tone (Django-free).

A photo query is cropped, turned, tilted, blurred or recompressed in ways the catalogue's
images are not, so the image tower is trained on such versions: random resized crops, flips,
quarter turns plus a small tilt, Gaussian blur, JPEG recompression and mild lighting. Nothing
here shifts hue or saturation: the skin tone is a label (Fitzpatrick type) that captions name
and searches filter on, so a colour jitter would teach the model that tones are
interchangeable. Brightness and contrast move by a few percent on luminance, scaling R, G and
B of a pixel together.

Crops, flips and rotations are one affine resampling of the whole batch (`grid_sample`, at
twice the output size then averaged down, which keeps fine texture from aliasing); corners a
tilt uncovers are filled by reflection, never black.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class AugmentConfig:
    crop_area: tuple[float, float] = (0.4, 1.0)  # share of the image a random crop keeps (enough to keep the lesion, mostly)
    crop_ratio: tuple[float, float] = (0.75, 1.333)  # aspect ratio range of that crop
    flip: float = 0.5  # probability of a mirror image (with quarter turns this also covers upside down)
    quarter_turns: bool = True  # a random multiple of 90 degrees
    tilt_degrees: float = 25.0  # plus a uniform tilt within +- this
    blur: float = 0.3  # probability of a Gaussian blur (sigma 0.3-1.5 output pixels)
    jpeg: float = 0.3  # probability of JPEG recompression at quality 20-90
    light: float = 0.06  # brightness and contrast factors within 1 +- light (same on every channel)


NO_AUGMENT = AugmentConfig(
    crop_area=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=0.0, quarter_turns=False, tilt_degrees=0.0, blur=0.0, jpeg=0.0, light=0.0
)


def augment(batch, size: int, generator, config: AugmentConfig):
    """uint8 (n, 3, H, W) -> float (n, 3, size, size) in [0, 1], each image transformed at random."""
    images = _resample(batch.float() / 255.0, size, generator, config)
    images = _lighting(images, generator, config.light)
    images = _blur(images, generator, config.blur)
    images = _jpeg(images, generator, config.jpeg)
    return images.clamp_(0.0, 1.0)


def _uniform(n: int, low: float, high: float, generator):
    import torch

    return low + (high - low) * torch.rand(n, generator=generator)


def _resample(images, size: int, generator, config: AugmentConfig):
    """One affine map per image: crop (area, ratio, position), mirror, rotation."""
    import torch
    import torch.nn.functional as F

    n = images.shape[0]
    area = _uniform(n, *config.crop_area, generator)
    log_ratio = _uniform(n, math.log(config.crop_ratio[0]), math.log(config.crop_ratio[1]), generator)
    ratio = torch.exp(log_ratio)
    # Half-widths of the crop in normalised coordinates ([-1, 1] spans the image).
    half_w = torch.sqrt(area * ratio).clamp(max=1.0)
    half_h = torch.sqrt(area / ratio).clamp(max=1.0)
    centre_x = (1 - half_w) * (2 * torch.rand(n, generator=generator) - 1)
    centre_y = (1 - half_h) * (2 * torch.rand(n, generator=generator) - 1)
    mirror_x = torch.where(torch.rand(n, generator=generator) < config.flip, -1.0, 1.0)
    turns = torch.randint(0, 4, (n,), generator=generator).float() if config.quarter_turns else torch.zeros(n)
    angle = turns * (math.pi / 2) + _uniform(n, -1.0, 1.0, generator) * math.radians(config.tilt_degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    sx, sy = half_w * mirror_x, half_h
    theta = torch.stack(
        [
            torch.stack([cos * sx, -sin * sy, centre_x], dim=1),
            torch.stack([sin * sx, cos * sy, centre_y], dim=1),
        ],
        dim=1,
    )  # (n, 2, 3): output coordinates -> input coordinates
    grid = F.affine_grid(theta, [n, 3, 2 * size, 2 * size], align_corners=False)
    sampled = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return F.avg_pool2d(sampled, 2)


def _lighting(images, generator, strength: float):
    """Brightness and contrast on luminance; every pixel is scaled as a whole, so its hue and
    chromaticity (the ratios R:G:B, i.e. the skin tone's colour) stay exactly as they were."""
    if strength <= 0:
        return images
    n = images.shape[0]
    brightness = _uniform(n, 1 - strength, 1 + strength, generator).view(n, 1, 1, 1)
    contrast = _uniform(n, 1 - strength, 1 + strength, generator).view(n, 1, 1, 1)
    luminance = (0.299 * images[:, 0:1] + 0.587 * images[:, 1:2] + 0.114 * images[:, 2:3]).clamp(min=1e-3)
    mean = luminance.mean(dim=(2, 3), keepdim=True)
    target = ((luminance - mean) * contrast + mean) * brightness
    return images * (target / luminance)


def gaussian_blur(image, sigma: float):
    """A (3, H, W) tensor blurred with a separable Gaussian (reflection at the edges)."""
    import torch
    import torch.nn.functional as F

    radius = max(1, int(math.ceil(2.5 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(image.unsqueeze(0), (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3)[0]


def _blur(images, generator, probability: float):
    import torch

    if probability <= 0:
        return images
    chosen = torch.nonzero(torch.rand(images.shape[0], generator=generator) < probability).flatten()
    sigmas = _uniform(len(chosen), 0.3, 1.5, generator)
    for row, sigma in zip(chosen.tolist(), sigmas.tolist()):
        images[row] = gaussian_blur(images[row], sigma)
    return images


def jpeg_roundtrip(image, quality: int):
    """A (3, H, W) float tensor in [0, 1] through JPEG at `quality` and back."""
    import numpy as np
    import torch
    from PIL import Image as PILImage

    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    decoded = np.asarray(PILImage.open(buffer).convert("RGB"))
    return torch.from_numpy(decoded.copy()).permute(2, 0, 1).float() / 255.0


def _jpeg(images, generator, probability: float):
    import torch

    if probability <= 0:
        return images
    chosen = torch.nonzero(torch.rand(images.shape[0], generator=generator) < probability).flatten()
    qualities = torch.randint(20, 91, (len(chosen),), generator=generator)
    for row, quality in zip(chosen.tolist(), qualities.tolist()):
        images[row] = jpeg_roundtrip(images[row], quality)
    return images
