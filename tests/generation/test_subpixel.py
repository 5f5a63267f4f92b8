"""Sub-pixel upsampling (issue 17 item 4): checkerboard-free at initialisation, the transposed
convolution's cost, and a generator built with it trains and samples like the others."""

import pytest
import torch

from generation.networks import SubpixelUp, define_G, init_weights
from generation.train import TrainConfig

@pytest.mark.parametrize("pad", ["zeros", "reflect"])
def test_icnr_start_is_a_nearest_neighbour_upsampling(pad):
    """At initialisation all four sub-pixels of each 2x2 output cell are equal: no checkerboard."""
    up = init_weights(torch.nn.Sequential(SubpixelUp(8, 5, bias=True, pad=pad)))[0]
    x = torch.randn(2, 8, 7, 9)
    y = up(x)
    assert y.shape == (2, 5, 14, 18)
    cells = y.unfold(2, 2, 2).unfold(3, 2, 2)  # (..., 7, 9, 2, 2)
    assert torch.allclose(cells, cells[..., :1, :1].expand_as(cells), atol=1e-6)


def test_without_icnr_the_sub_pixels_differ():
    """The check above can fail: a plain random init gives a checkerboard."""
    up = SubpixelUp(8, 5, bias=True)
    torch.nn.init.normal_(up.conv.weight, 0.0, 0.02)
    y = up(torch.randn(1, 8, 6, 6))
    cells = y.unfold(2, 2, 2).unfold(3, 2, 2)
    assert not torch.allclose(cells, cells[..., :1, :1].expand_as(cells), atol=1e-6)


def _conv_macs(net, size):
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * k * module.in_channels // module.groups
        elif isinstance(module, torch.nn.ConvTranspose2d):
            total += inputs[0].numel() * module.kernel_size[0] * module.kernel_size[1] * module.out_channels
    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        net(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return total


def test_subpixel_costs_what_transposed_costs_and_less_than_resize():
    args = TrainConfig().generator_args()
    macs = {kind: _conv_macs(define_G(**{**args, "upsample": kind}).eval(), 64) for kind in ("resize", "transposed", "subpixel")}
    # Transposed counts each input pixel's 4x4 scatter (the zero taps of stride 2 included), the
    # same multiply count as a 2x2 gather per output pixel.
    assert macs["subpixel"] == macs["transposed"]
    assert macs["resize"] > 1.5 * macs["subpixel"]


def test_a_subpixel_generator_samples_and_learns():
    args = {**TrainConfig().generator_args(), "upsample": "subpixel"}
    G = define_G(**args)
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    target = torch.rand(4, 3, 64, 64) * 2 - 1
    opt = torch.optim.Adam(G.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = (G(x) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    G.eval()
    assert G(x).shape == (4, 3, 64, 64)


def test_unknown_upsample_is_named():
    with pytest.raises(ValueError, match="subpixel"):
        define_G(**{**TrainConfig().generator_args(), "upsample": "bilinear"})
