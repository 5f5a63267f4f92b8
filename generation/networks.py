"""DermGAN networks: pix2pix U-Net generator and PatchGAN discriminator.

Follows junyanz/pytorch-CycleGAN-and-pix2pix (`networks.py`), with the patent's
checkerboard fix: every transposed convolution of the generator is replaced by a
nearest-neighbour 2x resize followed by a 3x3 convolution (`upsample="resize"`, the
default); `upsample="transposed"` restores the original for the ablation.

Django-free.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn


def get_norm_layer(name: str = "batch") -> Callable[[int], nn.Module]:
    if name == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if name == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if name == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm layer {name!r}: use batch, instance or none")


def _up(in_ch: int, out_ch: int, upsample: str, bias: bool) -> list[nn.Module]:
    if upsample == "resize":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=bias)]
    if upsample == "transposed":
        return [nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=bias)]
    raise ValueError(f"unknown upsample {upsample!r}: use resize or transposed")


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
    ) -> None:
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=use_bias)
        downrelu, uprelu = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        if outermost:
            down = [downconv]
            up = [uprelu, *_up(inner_nc * 2, outer_nc, upsample, bias=True), nn.Tanh()]
            layers = [*down, submodule, *up]
        elif innermost:
            down = [downrelu, downconv]
            up = [uprelu, *_up(inner_nc, outer_nc, upsample, use_bias), norm_layer(outer_nc)]
            layers = [*down, *up]
        else:
            down = [downrelu, downconv, norm_layer(inner_nc)]
            up = [uprelu, *_up(inner_nc * 2, outer_nc, upsample, use_bias), norm_layer(outer_nc)]
            layers = [*down, submodule, *up, *([nn.Dropout(0.5)] if use_dropout else [])]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """pix2pix U-Net: `num_downs` halvings (8 for 256 -> 1x1), widths ngf..ngf*8."""

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
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5 (got {num_downs})")
        norm_layer = get_norm_layer(norm)
        use_bias = norm == "instance"
        kw = {"norm_layer": norm_layer, "use_bias": use_bias, "upsample": upsample}
        # Widths ngf, 2ngf, 4ngf, 8ngf, 8ngf, ... capped at ngf * max_mult (pix2pix: 8).
        width = [ngf * min(2**i, max_mult) for i in range(num_downs)]
        block = UnetBlock(width[-2], width[-1], innermost=True, **kw)
        for level in range(num_downs - 2, 0, -1):
            # pix2pix puts dropout in the up-blocks of levels 5..num_downs-2 (three of them at 8)
            dropout = use_dropout and 4 <= level
            block = UnetBlock(width[level - 1], width[level], submodule=block, use_dropout=dropout, **kw)
        self.model = UnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, **kw)

    def forward(self, semantic_map: torch.Tensor) -> torch.Tensor:
        return self.model(semantic_map)


class NLayerDiscriminator(nn.Module):
    """PatchGAN. `forward(x, features=True)` also returns the second-to-last conv layer's
    activations (after norm and LeakyReLU), used by the feature-matching loss."""

    def __init__(self, input_nc: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        use_bias = norm == "instance"
        body: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            body += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=use_bias), norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2**n_layers, 8)
        body += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=use_bias), norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        self.body = nn.Sequential(*body)
        self.head = nn.Conv2d(ndf * mult, 1, 4, 1, 1)

    def forward(self, x: torch.Tensor, features: bool = False):
        feats = self.body(x)
        logits = self.head(feats)
        return (logits, feats) if features else logits


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """pix2pix 'normal' init: conv weights N(0, gain), norm weights N(1, gain), biases 0."""

    def init(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    return net.apply(init)


def init_net(net: nn.Module, device: torch.device | str = "cpu", gain: float = 0.02) -> nn.Module:
    return init_weights(net, gain).to(device)


GENERATORS = {"unet": UnetGenerator}
DISCRIMINATORS = {"patch": NLayerDiscriminator}


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
