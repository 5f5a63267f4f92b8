"""The demo preset's additions: noise input with mode seeking, reflection padding, two-scale D.
Each is switchable; with them off, the patent's deterministic setup is unchanged."""

import numpy as np
import pytest
import torch

from generation.losses import GANLoss, LossWeights, generator_losses, mode_seeking
from generation.networks import MultiscaleDiscriminator, define_D, define_G
from generation.sample import generate, generator_load, spec_map
from generation.train import Trainer, preset, train

from .helpers import VOCAB, one_torch_thread, synthetic_pairs, tiny_config  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# 64 px: the half-scale PatchGAN needs at least 32 px of input.
NOISY = dict(noise_channels=1, latent_dim=4, pad="reflect", num_d=2, lambda_ms=1.0, use_dropout=False,
             gan_mode="lsgan", rotate=True, image_size=64, num_downs=6)


@pytest.fixture(scope="module")
def noisy_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("noisy")
    result = train(tiny_config(steps=2, **NOISY), pairs=synthetic_pairs(size=64), vocabulary=list(VOCAB),
                   data_fingerprint="f", out_dir=out, progress=False)
    return result.checkpoints[-1]


def test_same_seed_same_image_other_seed_other_image(noisy_checkpoint):
    gen = generator_load(noisy_checkpoint, catalogue=VOCAB)
    maps = [spec_map(gen, condition="melanoma", skin_type=6, size=0.4)]
    a, b, c = generate(gen, maps, seed=7), generate(gen, maps, seed=7), generate(gen, maps, seed=8)
    assert a[0].tobytes() == b[0].tobytes()
    diff = np.abs(np.asarray(a[0], dtype=float) - np.asarray(c[0], dtype=float)).mean()
    assert diff > 0.5  # the noise, not dropout (off here), makes seeds differ


def test_noise_is_used_by_the_generator():
    g = define_G("unet", num_downs=5, ngf=8, noise_channels=1, latent_dim=4).eval()
    x = torch.zeros(2, 3, 32, 32)
    z1 = g.draw_noise(2, 32, 32, generator=torch.Generator().manual_seed(0))
    z2 = g.draw_noise(2, 32, 32, generator=torch.Generator().manual_seed(1))
    assert z1.shape == (2, 5, 32, 32)
    assert torch.equal(z1[:, 1:, 0, 0], z1[:, 1:, 31, 31])  # the latent is broadcast over the map
    with torch.no_grad():
        assert not torch.allclose(g(x, z1), g(x, z2))
        assert torch.equal(g(x, z1), g(x, z1))


def test_patent_setup_has_no_noise_and_is_deterministic_in_eval():
    g = define_G("unet", num_downs=5, ngf=8, use_dropout=False).eval()
    assert g.noise_nc == 0
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(g(x), g(x))
    assert "noise_channels" not in tiny_config().generator_args()  # old checkpoints describe themselves as before


def test_reflect_padding_in_every_generator_conv():
    g = define_G("unet", num_downs=5, ngf=8, pad="reflect")
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.padding_mode == "reflect" for m in convs)
    with pytest.raises(ValueError, match="pad"):
        define_G("unet", num_downs=5, ngf=8, pad="circular")


def test_multiscale_discriminator_returns_one_output_per_scale():
    d = define_D("multiscale", ndf=8, n_layers=3, num_d=2)
    assert isinstance(d, MultiscaleDiscriminator)
    logits, feats = d(torch.zeros(2, 6, 64, 64), features=True)
    assert [tuple(x.shape) for x in logits] == [(2, 1, 6, 6), (2, 1, 2, 2)]
    assert len(feats) == 2
    loss = GANLoss("lsgan")
    assert float(loss([torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)], True)) == pytest.approx(0.5)


def test_mode_seeking_falls_as_outputs_spread_for_the_same_noise_gap():
    za, zb = torch.zeros(2, 5, 8, 8), torch.ones(2, 5, 8, 8)
    base = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    other = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    near = mode_seeking(base, 0.9 * base + 0.1 * other, za, zb)
    spread = mode_seeking(base, other, za, zb)
    assert spread < near


def test_mode_seeking_term_is_in_the_total_only_when_weighted():
    fake = torch.randn(4, 3, 8, 8)
    kw = dict(fake=fake, real=torch.zeros_like(fake), semantic_map=-torch.ones_like(fake),
              fake_logits=torch.zeros(4, 1, 2, 2), fake_features=None, real_features=None, gan_loss=GANLoss("lsgan"),
              noise=torch.randn(4, 5, 8, 8))
    off = generator_losses(weights=LossWeights(feature_matching=0.0), **kw)
    on = generator_losses(weights=LossWeights(feature_matching=0.0, mode_seeking=2.0), **kw)
    assert float(off["ms"]) == 0.0 and float(on["ms"]) > 0
    assert float(on["total"]) == pytest.approx(float(off["total"] + on["ms"]))


def test_mode_seeking_batches_repeat_their_maps():
    from generation.train import _batch

    cfg = tiny_config(**NOISY)
    real, sem = _batch(synthetic_pairs(size=64), cfg, torch.Generator().manual_seed(0), torch.device("cpu"))
    half = cfg.batch_size // 2
    assert torch.equal(sem[:half], sem[half:]) and torch.equal(real[:half], real[half:])


def test_noisy_run_resumes_exactly(tmp_path):
    pairs = synthetic_pairs(size=64)
    cfg4, cfg2 = tiny_config(steps=4, **NOISY), tiny_config(steps=2, **NOISY)
    train(cfg4, pairs=pairs, vocabulary=list(VOCAB), data_fingerprint="f", out_dir=tmp_path / "a", progress=False)
    train(cfg2, pairs=pairs, vocabulary=list(VOCAB), data_fingerprint="f", out_dir=tmp_path / "b", progress=False)
    train(cfg4, pairs=pairs, vocabulary=list(VOCAB), data_fingerprint="f", out_dir=tmp_path / "b", resume=True,
          progress=False)
    sa = torch.load(tmp_path / "a" / "resume.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "resume.pt", weights_only=True)
    for key, value in sa["generator"]["state"].items():
        assert torch.equal(value, sb["generator"]["state"][key]), key


def test_demo_preset_is_the_patent_architecture_at_128():
    cfg = preset("demo")
    assert cfg.image_size == 128 and cfg.upsample == "resize" and cfg.num_downs == 7
    assert cfg.lambda_l1 and cfg.lambda_roi and cfg.lambda_fm and cfg.lambda_gan  # the four losses
    trainer = Trainer(cfg)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in trainer.G.modules())
    assert isinstance(trainer.D, MultiscaleDiscriminator)


def test_mode_seeking_does_not_reward_a_colour_cast():
    za, zb = torch.zeros(2, 4, 8, 8), torch.ones(2, 4, 8, 8)
    base = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    cast = mode_seeking(base, base + 0.5, za, zb)  # the same picture, tinted
    shaped = mode_seeking(base, base.flip(-1), za, zb)  # another arrangement
    assert shaped < cast and cast > 1e4


def test_spectral_discriminator_and_all_layer_feature_matching():
    d = define_D("multiscale", ndf=8, n_layers=3, num_d=2, norm="spectral")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    assert any(hasattr(m, "weight_orig") for m in d.modules())  # spectrally normalised convs
    logits, feats = d(torch.zeros(2, 6, 64, 64), features=True, all_layers=True)
    assert len(feats) == 2 and len(feats[0]) == 4  # every conv block (n_layers + 1) of every scale
    from generation.losses import feature_matching

    assert float(feature_matching(feats, feats).detach()) == 0.0
    moved = [[f + 1 for f in scale] for scale in feats]
    assert float(feature_matching(moved, feats).detach()) == pytest.approx(1.0)


def test_a_step_with_the_demo_recipe_at_tiny_size_runs_and_resumes_state():
    cfg = tiny_config(**NOISY, norm_d="spectral", fm_layers="all")
    trainer = Trainer(cfg)
    out = trainer.step(synthetic_pairs(size=64))
    assert out["fm"] > 0 and out["ms"] > 0


# --- injected texture noise (demo-v8) ---------------------------------------------------------

def _injected(**kw):
    return define_G("unet", num_downs=5, ngf=8, use_dropout=False, noise_channels=1, latent_dim=4,
                    inject_noise=True, pad="reflect", **kw).eval()


def test_injected_noise_starts_silent_and_then_varies_texture_only_through_its_plane():
    g = _injected()
    assert len(g.injections) == 4  # every decoder level except the output one
    x = torch.zeros(1, 3, 32, 32)
    z = g.draw_noise(1, 32, 32, generator=torch.Generator().manual_seed(0))
    other_plane = z.clone()
    other_plane[:, :1] = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.equal(g(x, z), g(x, other_plane))  # zero scales: the plane changes nothing yet
        for module in g.injections:
            module.scale.fill_(0.5)
        assert torch.equal(g(x, z), g(x, z))  # same noise, same image
        assert not torch.allclose(g(x, z), g(x, other_plane))  # the plane now shapes texture
    assert all(module.planes is None for module in g.injections)  # nothing kept between calls


def test_injected_noise_plane_is_not_an_input_channel():
    g = _injected()
    first_conv = next(m for m in g.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == 3 + 4  # map + latent; the plane goes to the decoder
    with pytest.raises(ValueError, match="noise_channels=1"):
        define_G("unet", num_downs=5, ngf=8, noise_channels=2, inject_noise=True)


def test_mode_seeking_pairs_share_their_texture_plane_and_d_has_its_own_learning_rate():
    cfg = tiny_config(**(NOISY | {"noise_channels": 1}), inject_noise=True, lr_d=5e-5)
    trainer = Trainer(cfg)
    seen = {}
    original = trainer.G.forward

    def spy(sem, noise=None):
        seen["noise"] = noise
        return original(sem, noise)

    trainer.G.forward = spy
    trainer.step(synthetic_pairs(size=64))
    noise, half = seen["noise"], cfg.batch_size // 2
    assert torch.equal(noise[:half, :1], noise[half:, :1])  # the pair's texture plane is shared
    assert not torch.equal(noise[:half, 1:], noise[half:, 1:])  # the latent differs
    assert trainer.opt_D.param_groups[0]["lr"] == pytest.approx(cfg.lr_d * trainer.opt_G.param_groups[0]["lr"] / cfg.lr)
    assert not preset("demo").inject_noise and not preset("demo").lr_d  # the shipped v7 recipe (docs/dermgan.md)


def test_noise_levels_keeps_the_injected_noise_to_the_finest_decoder_levels():
    g = _injected(noise_levels=2)
    assert len(g.injections) == 2
    sizes = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: sizes.append(out.shape[-1])) for m in g.injections]
    with torch.no_grad():
        g(torch.zeros(1, 3, 32, 32), g.draw_noise(1, 32, 32, generator=torch.Generator().manual_seed(0)))
    for hook in hooks:
        hook.remove()
    assert sorted(sizes) == [8, 16]  # half and a quarter of the 32 px image; nothing coarser
    with pytest.raises(ValueError, match="noise_levels"):
        define_G("unet", num_downs=5, ngf=8, noise_channels=1, noise_levels=2)
