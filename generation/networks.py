"""DermGAN networks: pix2pix U-Net generator and PatchGAN discriminator.

Follows junyanz/pytorch-CycleGAN-and-pix2pix (`networks.py`), with the patent's
checkerboard fix: every transposed convolution of the generator is replaced by a
nearest-neighbour 2x resize followed by a 3x3 convolution (`upsample="resize"`, the
default); `upsample="transposed"` restores the original for the ablation.

Two switchable additions for the demo preset (both off by default, so the patent's
deterministic setup stays reproducible):
- a noise input: `noise_channels` planes of per-pixel Gaussian noise (texture) and a
  `latent_dim` vector broadcast over the map (shape, lighting), concatenated to the semantic
  map, as BicycleGAN's "add_to_input"; a mode-seeking loss (losses.py) makes G use them;
- `pad="reflect"`: reflection padding in every convolution, so the borders carry no
  zero-padding signal the generator could turn into frame lines.
`MultiscaleDiscriminator` runs PatchGANs on the pair at full and half resolution (pix2pixHD).

Django-free.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def get_norm_layer(name: str = "batch") -> Callable[[int], nn.Module]:
    if name == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if name == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if name == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm layer {name!r}: use batch, instance or none (D also: spectral)")


PADS = ("zeros", "reflect")


def _check_pad(pad: str) -> str:
    if pad not in PADS:
        raise ValueError(f"unknown pad {pad!r}: use zeros or reflect")
    return pad


UPSAMPLES = ("resize", "transposed", "subpixel")


class SubpixelUp(nn.Module):
    """2x upsampling by sub-pixel convolution (Shi et al. 2016): a 2x2 convolution at the input
    resolution gives 4 x out_ch planes that PixelShuffle interleaves. That is the transposed
    convolution's cost (each output pixel sees 2x2 inputs; resize-convolution's 3x3 at the doubled
    size costs 2.25x), and with ICNR initialisation (Aitken et al. 2017: the four sub-pixel
    kernels start equal, so the first output is a nearest-neighbour upsampling) it starts free
    of checkerboards, which transposed convolutions are not."""

    def __init__(self, in_ch: int, out_ch: int, bias: bool, pad: str = "zeros") -> None:
        super().__init__()
        # A 2x2 kernel needs one extra row and column, on the far side. Under pad="reflect" they
        # repeat the edge (reflection needs two pixels; the U-Net's innermost input is 1x1).
        self.pad = nn.ReplicationPad2d((0, 1, 0, 1)) if pad == "reflect" else nn.ZeroPad2d((0, 1, 0, 1))
        self.conv = nn.Conv2d(in_ch, out_ch * 4, 2, 1, 0, bias=bias)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(self.pad(x)))

    @torch.no_grad()
    def icnr_(self) -> None:
        """Copy each output channel's first sub-pixel kernel to its other three (PixelShuffle
        takes channel c * 4 + k to sub-pixel k of output channel c)."""
        w = self.conv.weight
        out_ch = w.shape[0] // 4
        w.copy_(w.view(out_ch, 4, *w.shape[1:])[:, :1].expand(-1, 4, -1, -1, -1).reshape_as(w))
        if self.conv.bias is not None:
            b = self.conv.bias
            b.copy_(b.view(out_ch, 4)[:, :1].expand(-1, 4).reshape_as(b))


def _up(in_ch: int, out_ch: int, upsample: str, bias: bool, pad: str = "zeros") -> list[nn.Module]:
    if upsample == "resize":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=bias, padding_mode=pad)]
    if upsample == "transposed":
        return [nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=bias)]
    if upsample == "subpixel":
        return [SubpixelUp(in_ch, out_ch, bias, pad)]
    raise ValueError(f"unknown upsample {upsample!r}: use {', '.join(UPSAMPLES)}")


class NoiseInjection(nn.Module):
    """Per-pixel noise added to a decoder level's features with a learned per-channel scale
    (StyleGAN's noise inputs), zero at initialisation so the network starts as without it.

    The noise comes from the generator's full-resolution planes (`planes`, set by
    `UnetGenerator.forward` for one call), average-pooled to this level's size and rescaled
    to unit variance: the same planes give the same image, and texture gets a source at every
    scale even where the map is one colour (a box that fills the window)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.planes: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.planes is None:
            return x
        full = self.planes[:, :1]
        factor = full.shape[-1] // x.shape[-1]
        noise = F.avg_pool2d(full, factor) * factor if factor > 1 else full
        return x + self.scale * noise.to(x.dtype)


class UnetBlock(nn.Module):
    """One level of the U-Net: down, the inner levels, up, then concatenate with the input."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        *,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm_layer: Callable[[int], nn.Module],
        use_bias: bool,
        use_dropout: bool = False,
        upsample: str = "resize",
        pad: str = "zeros",
        inject_noise: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=use_bias, padding_mode=pad)
        downrelu, uprelu = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        if outermost:
            down = [downconv]
            up = [uprelu, *_up(inner_nc * 2, outer_nc, upsample, bias=True, pad=pad), nn.Tanh()]
            layers = [*down, submodule, *up]
        elif innermost:
            down = [downrelu, downconv]
            inject = [NoiseInjection(outer_nc)] if inject_noise else []
            up = [uprelu, *_up(inner_nc, outer_nc, upsample, use_bias, pad), *inject, norm_layer(outer_nc)]
            layers = [*down, *up]
        else:
            down = [downrelu, downconv, norm_layer(inner_nc)]
            inject = [NoiseInjection(outer_nc)] if inject_noise else []
            up = [uprelu, *_up(inner_nc * 2, outer_nc, upsample, use_bias, pad), *inject, norm_layer(outer_nc)]
            layers = [*down, submodule, *up, *([nn.Dropout(0.5)] if use_dropout else [])]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """pix2pix U-Net: `num_downs` halvings (8 for 256 -> 1x1), widths ngf..ngf*8.

    `forward(map, noise=None)`: with a noise input configured, `noise` is the
    (B, noise_channels + latent_dim, H, W) tensor from `draw_noise`; None draws it from
    torch's global generator (training). Same noise, same image.
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = True,
        upsample: str = "resize",
        max_mult: int = 8,
        noise_channels: int = 0,
        latent_dim: int = 0,
        pad: str = "zeros",
        inject_noise: bool = False,
        noise_levels: int = 0,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5 (got {num_downs})")
        if noise_channels < 0 or latent_dim < 0:
            raise ValueError("noise_channels and latent_dim must be >= 0")
        if inject_noise and noise_channels != 1:
            raise ValueError("inject_noise uses one full-resolution noise plane: set noise_channels=1")
        if noise_levels < 0 or (noise_levels and not inject_noise):
            raise ValueError("noise_levels counts the finest decoder levels that get injected noise: "
                             "needs inject_noise and is >= 0 (0 = every level)")
        norm_layer = get_norm_layer(norm)
        use_bias = norm == "instance"
        self.map_nc, self.noise_channels, self.latent_dim = input_nc, noise_channels, latent_dim
        self.inject_noise = inject_noise
        # Injected planes go to the decoder levels, not the input (where mode seeking taught G
        # to copy them into the image as speckle: run demo-v1).
        input_nc = input_nc + latent_dim + (0 if inject_noise else noise_channels)
        kw = {"norm_layer": norm_layer, "use_bias": use_bias, "upsample": upsample, "pad": _check_pad(pad)}

        def injected(level: int) -> bool:
            # Level 1 is the finest inner level (half the image side), num_downs - 1 the innermost.
            # Coarse levels' noise made blotches over healthy skin (run demo-v8): noise_levels
            # keeps it to fine texture.
            return inject_noise and (noise_levels == 0 or level <= noise_levels)

        # Widths ngf, 2ngf, 4ngf, 8ngf, 8ngf, ... capped at ngf * max_mult (pix2pix: 8).
        width = [ngf * min(2**i, max_mult) for i in range(num_downs)]
        block = UnetBlock(width[-2], width[-1], innermost=True, inject_noise=injected(num_downs - 1), **kw)
        for level in range(num_downs - 2, 0, -1):
            # pix2pix puts dropout in the up-blocks of levels 5..num_downs-2 (three of them at 8)
            dropout = use_dropout and 4 <= level
            block = UnetBlock(width[level - 1], width[level], submodule=block, use_dropout=dropout,
                              inject_noise=injected(level), **kw)
        self.model = UnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, **kw)
        self.injections = [m for m in self.modules() if isinstance(m, NoiseInjection)]

    @property
    def noise_nc(self) -> int:
        return self.noise_channels + self.latent_dim

    def draw_noise(self, batch: int, height: int, width: int, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> torch.Tensor:
        """The noise input for `batch` maps: per-pixel planes, then the latent broadcast."""
        planes = torch.randn(batch, self.noise_channels, height, width, generator=generator)
        latent = torch.randn(batch, self.latent_dim, 1, 1, generator=generator).expand(-1, -1, height, width)
        return torch.cat([planes, latent], 1).to(device)

    def forward(self, semantic_map: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if self.noise_nc:
            if noise is None:
                b, _, h, w = semantic_map.shape
                noise = self.draw_noise(b, h, w, device=semantic_map.device)
            if self.inject_noise:
                planes, noise = noise[:, :self.noise_channels], noise[:, self.noise_channels:]
                for module in self.injections:
                    module.planes = planes
            semantic_map = torch.cat([semantic_map, noise.to(semantic_map.dtype)], 1)
        try:
            return self.model(semantic_map)
        finally:
            for module in self.injections:
                module.planes = None


class NLayerDiscriminator(nn.Module):
    """PatchGAN. `forward(x, features=True)` also returns the second-to-last conv layer's
    activations (after norm and LeakyReLU), used by the feature-matching loss; with
    `all_layers=True`, the list of every conv block's activations (pix2pixHD's matching).

    norm="spectral": spectral normalisation of every conv and no activation norm (SNGAN,
    SPADE), which keeps D from overpowering a small generator."""

    def __init__(self, input_nc: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        spectral = norm == "spectral"
        norm_layer = get_norm_layer("none" if spectral else norm)
        use_bias = norm in ("instance", "spectral")
        sn = nn.utils.spectral_norm if spectral else (lambda conv: conv)
        blocks: list[nn.Module] = [nn.Sequential(sn(nn.Conv2d(input_nc, ndf, 4, 2, 1)), nn.LeakyReLU(0.2, True))]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            blocks.append(nn.Sequential(sn(nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=use_bias)),
                                        norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)))
        prev, mult = mult, min(2**n_layers, 8)
        blocks.append(nn.Sequential(sn(nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=use_bias)),
                                    norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)))
        self.body = nn.Sequential(*blocks)
        self.head = sn(nn.Conv2d(ndf * mult, 1, 4, 1, 1))

    def forward(self, x: torch.Tensor, features: bool = False, all_layers: bool = False):
        acts = []
        for block in self.body:
            x = block(x)
            acts.append(x)
        logits = self.head(x)
        if not features:
            return logits
        return logits, (acts if all_layers else x)


class MultiscaleDiscriminator(nn.Module):
    """`num_d` PatchGANs, the k-th on the pair downsampled 2**k times (pix2pixHD): the coarse
    ones judge the layout of the whole crop, the full-scale one the texture.

    forward returns lists (one entry per scale) of logits, and of second-to-last-layer
    features when `features=True`; the losses average over scales."""

    def __init__(self, input_nc: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch", num_d: int = 2) -> None:
        super().__init__()
        if num_d < 1:
            raise ValueError(f"num_d must be >= 1 (got {num_d})")
        self.scales = nn.ModuleList(NLayerDiscriminator(input_nc, ndf, n_layers, norm) for _ in range(num_d))
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor, features: bool = False, all_layers: bool = False):
        logits, feats = [], []
        for k, d in enumerate(self.scales):
            if k:
                x = self.down(x)
            out = d(x, features=True, all_layers=all_layers)
            logits.append(out[0])
            feats.append(out[1])
        return (logits, feats) if features else logits


class ConditionNet(nn.Module):
    """A small image-only condition classifier (AC-GAN's auxiliary classifier, kept apart from D
    because D sees the map and so knows the condition already). Trained on real crops only; its
    cross-entropy on G's output asks G for images whose condition can be told from the pixels.
    GroupNorm, not BatchNorm: G's batches pass through it too and must not move its statistics."""

    def __init__(self, num_classes: int, input_nc: int = 3, width: int = 32, depth: int = 5) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a condition classifier needs at least 2 classes (got {num_classes})")
        layers: list[nn.Module] = []
        ch_in = input_nc
        for n in range(depth):
            ch = width * min(2**n, 8)
            layers += [nn.Conv2d(ch_in, ch, 4, 2, 1), nn.GroupNorm(8, ch), nn.LeakyReLU(0.2, True)]
            ch_in = ch
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3))
        self.head = nn.Linear(ch_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """pix2pix 'normal' init: conv weights N(0, gain), norm weights N(1, gain), biases 0; ICNR
    for sub-pixel upsampling."""

    def init(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    net.apply(init)
    for m in net.modules():  # after the normal init, which would undo it
        if isinstance(m, SubpixelUp):
            m.icnr_()
    return net


def init_net(net: nn.Module, device: torch.device | str = "cpu", gain: float = 0.02) -> nn.Module:
    return init_weights(net, gain).to(device)


GENERATORS = {"unet": UnetGenerator}
DISCRIMINATORS = {"patch": NLayerDiscriminator, "multiscale": MultiscaleDiscriminator}


def define_G(name: str = "unet", **kwargs) -> nn.Module:
    """A freshly initialised generator; kwargs are the model arguments a checkpoint stores."""
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}: choose from {sorted(GENERATORS)}")
    return init_net(GENERATORS[name](**kwargs))


def define_D(name: str = "patch", **kwargs) -> nn.Module:
    if name not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {name!r}: choose from {sorted(DISCRIMINATORS)}")
    return init_net(DISCRIMINATORS[name](**kwargs))


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
