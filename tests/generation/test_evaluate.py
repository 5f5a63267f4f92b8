import numpy as np
import pytest
import torch

from generation.evaluate import crop_encoder_train, fd_of_features, frechet_distance, kid, score

from .helpers import one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_frechet_distance_of_diagonal_gaussians_matches_closed_form():
    # For commuting covariances FD = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    a, b = np.array([1.0, 4.0, 9.0, 0.25]), np.array([4.0, 1.0, 16.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
    expected = 5.0 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, abs=1e-9)


def test_frechet_distance_is_rotation_invariant_and_zero_for_equal():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    a, b = np.diag([1.0, 2.0, 3.0, 4.0, 5.0]), np.diag([2.0, 2.0, 1.0, 9.0, 0.5])
    expected = ((np.sqrt(np.diag(a)) - np.sqrt(np.diag(b))) ** 2).sum()
    assert frechet_distance(np.zeros(5), q @ a @ q.T, np.zeros(5), q @ b @ q.T) == pytest.approx(expected, abs=1e-8)
    s = rng.normal(size=(5, 5))
    s = s @ s.T
    assert frechet_distance(np.ones(5), s, np.ones(5), s) == pytest.approx(0, abs=1e-8)


def test_frechet_distance_from_samples_approaches_closed_form():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, size=(20000, 3))
    y = rng.normal(2, 2, size=(20000, 3))
    expected = 3 * 4 + 3 * (1 - 2) ** 2  # |mu|^2 + sum (1 - 2)^2
    assert fd_of_features(x, y) == pytest.approx(expected, rel=0.03)


def test_kid_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(2)
    x, y, z = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)), rng.normal(1, 1, size=(300, 8))
    same, _ = kid(x, y, subsets=10, subset_size=200)
    different, _ = kid(x, z, subsets=10, subset_size=200)
    assert abs(same) < 0.05 < different


def test_score_names_its_extractor():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (24, 3, 32, 32), dtype=torch.uint8, generator=gen)
    encoder = crop_encoder_train(images, torch.randint(0, 3, (24,), generator=gen), torch.randint(1, 7, (24,), generator=gen),
                                 n_conditions=3, steps=3, name="test-encoder")
    result = score(images[:12], images[12:], encoder, kid_subsets=3)
    assert result.extractor.startswith("test-encoder") and result.n_real == 12
    assert result.as_dict()["extractor"] == result.extractor
