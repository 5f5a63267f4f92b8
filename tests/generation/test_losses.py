import torch

from generation.losses import GANLoss, LossWeights, discriminator_loss, generator_losses, roi_mask


def _map(with_roi=True):
    m = torch.full((1, 3, 8, 8), -1.0)
    m[:, 0] = 0.2
    if with_roi:
        m[:, 1:, 2:4, 2:4] = 0.5
    return m


def _terms(fake, real, m, *, fake_feats=None, real_feats=None, logits=None, weights=LossWeights()):
    fake_feats = torch.zeros(1, 4, 2, 2) if fake_feats is None else fake_feats
    real_feats = torch.zeros(1, 4, 2, 2) if real_feats is None else real_feats
    logits = torch.full((1, 1, 2, 2), 20.0) if logits is None else logits
    return generator_losses(fake=fake, real=real, semantic_map=m, fake_logits=logits, fake_features=fake_feats,
                            real_features=real_feats, weights=weights, gan_loss=GANLoss())


def test_roi_mask_covers_the_boxes_only():
    mask = roi_mask(_map())
    assert mask.sum() == 4 and mask[0, 0, 2, 2] == 1 and mask[0, 0, 0, 0] == 0


def test_identical_images_give_zero_reconstruction_terms():
    real = torch.rand(1, 3, 8, 8)
    t = _terms(real.clone(), real, _map())
    assert t["l1"] == 0 and t["roi"] == 0 and t["fm"] == 0
    assert t["gan"] < 1e-6  # D is fooled (logits +20)


def test_error_outside_the_roi_moves_l1_but_not_roi():
    real = torch.zeros(1, 3, 8, 8)
    fake = real.clone()
    fake[:, :, 6:, 6:] = 1.0
    t = _terms(fake, real, _map())
    assert t["l1"] > 0 and t["roi"] == 0


def test_error_inside_the_roi_moves_both():
    real = torch.zeros(1, 3, 8, 8)
    fake = real.clone()
    fake[:, :, 2:4, 2:4] = 1.0
    t = _terms(fake, real, _map())
    assert t["roi"] == 100.0  # mean |1 - 0| over the ROI, weight 100
    assert 0 < t["l1"] < t["roi"]


def test_no_roi_gives_zero_roi_loss():
    real = torch.zeros(1, 3, 8, 8)
    assert _terms(real + 1, real, _map(with_roi=False))["roi"] == 0


def test_feature_matching_follows_feature_difference_and_weight():
    real = torch.zeros(1, 3, 8, 8)
    t = _terms(real, real, _map(), fake_feats=torch.ones(1, 4, 2, 2))
    assert t["fm"] == 10.0
    off = _terms(real, real, _map(), fake_feats=torch.ones(1, 4, 2, 2), weights=LossWeights(feature_matching=0))
    assert off["fm"] == 0


def test_adversarial_terms():
    real = torch.zeros(1, 3, 8, 8)
    assert _terms(real, real, _map(), logits=torch.full((1, 1, 2, 2), -20.0))["gan"] > 10
    loss = GANLoss()
    confident = discriminator_loss(torch.full((1, 1), 20.0), torch.full((1, 1), -20.0), loss)
    fooled = discriminator_loss(torch.full((1, 1), -20.0), torch.full((1, 1), 20.0), loss)
    assert confident < 1e-6 and fooled > 10
    assert GANLoss("lsgan")(torch.ones(3), True) == 0


def test_total_is_the_sum():
    real = torch.zeros(1, 3, 8, 8)
    t = _terms(real + 0.5, real, _map(), fake_feats=torch.ones(1, 4, 2, 2), logits=torch.zeros(1, 1, 2, 2))
    assert torch.isclose(t["total"], t["l1"] + t["roi"] + t["fm"] + t["gan"])
