import pytest
import torch
from torch import nn

from generation.networks import count_parameters, define_D, define_G

from .helpers import one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_generator_and_discriminator_shapes():
    g = define_G("unet", num_downs=5, ngf=8)
    d = define_D("patch", ndf=8, n_layers=3)
    x = torch.randn(2, 3, 32, 32)
    y = g(x)
    assert y.shape == (2, 3, 32, 32) and y.abs().max() <= 1
    logits, feats = d(torch.cat([x, y], 1), features=True)
    assert logits.shape == (2, 1, 2, 2)
    assert feats.shape == (2, 64, 3, 3)  # ndf * 8 at the second-to-last conv


def test_paper_shapes_match_pix2pix():
    d = define_D("patch", ndf=64, n_layers=3)
    assert d(torch.zeros(1, 6, 256, 256)).shape == (1, 1, 30, 30)
    resize, transposed = define_G(num_downs=8, ngf=64), define_G(num_downs=8, ngf=64, upsample="transposed")
    assert round(count_parameters(transposed) / 1e6, 1) == 54.4
    assert round(count_parameters(resize) / 1e6, 1) == 39.2


def test_default_generator_has_no_transposed_convolution():
    default = define_G(num_downs=5, ngf=8)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in default.modules())
    assert any(isinstance(m, nn.Upsample) for m in default.modules())
    ablation = define_G(num_downs=5, ngf=8, upsample="transposed")
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in ablation.modules()) == 5


def test_init_is_normal_0_002():
    g = define_G(num_downs=8, ngf=64)
    w = g.model.model[0].weight.detach()
    assert abs(float(w.mean())) < 1e-3 and abs(float(w.std()) - 0.02) < 2e-3


@pytest.mark.parametrize("factory, name", [(define_G, "resnet"), (define_D, "pixel")])
def test_unknown_names_raise(factory, name):
    with pytest.raises(ValueError, match="unknown"):
        factory(name)


def test_unknown_upsample_and_norm_raise():
    with pytest.raises(ValueError, match="upsample"):
        define_G(num_downs=5, ngf=8, upsample="bilinear")
    with pytest.raises(ValueError, match="norm"):
        define_G(num_downs=5, ngf=8, norm="group")
