"""The auxiliary condition classifier (`lambda_cls`): labels read from maps, a classifier that
learns from real crops only, and a generator term that resumes exactly."""

import pytest
import torch

from generation.dataset import to_float
from generation.train import Trainer, blur, map_labels, train

from .helpers import VOCAB, one_torch_thread, synthetic_pairs, tiny_config  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_map_labels_read_each_maps_condition():
    pairs = synthetic_pairs(n=8)
    labels = map_labels(to_float(pairs.maps), len(VOCAB))
    assert labels.tolist() == [i % len(VOCAB) for i in range(8)]  # synthetic_pairs cycles the vocabulary


def test_a_map_without_boxes_is_refused():
    pairs = synthetic_pairs(n=2)
    maps = to_float(pairs.maps)
    maps[:, 1:3] = -1.0  # G, B zero everywhere: no condition box
    with pytest.raises(ValueError, match="without a condition box"):
        map_labels(maps, len(VOCAB))


def test_classifier_learns_from_real_crops_and_the_generator_term_is_reported():
    pairs = synthetic_pairs(n=8)
    trainer = Trainer(tiny_config(lambda_cls=1.0, flip=False), num_classes=len(VOCAB))
    before = {k: v.clone() for k, v in trainer.C.state_dict().items()}
    terms = [trainer.step(pairs) for _ in range(3)]
    assert all(t["cls"] > 0 and t["c"] > 0 for t in terms)
    assert any(not torch.equal(before[k], v) for k, v in trainer.C.state_dict().items())


def test_without_a_vocabulary_size_the_term_is_refused():
    with pytest.raises(ValueError, match="num_classes"):
        Trainer(tiny_config(lambda_cls=1.0))


def test_resume_with_the_classifier_continues_exactly(tmp_path):
    pairs = synthetic_pairs()
    cfg = dict(lambda_cls=0.5)
    train(tiny_config(steps=4, **cfg), pairs=pairs, vocabulary=list(VOCAB), data_fingerprint="f",
          out_dir=tmp_path / "a", progress=False)
    train(tiny_config(steps=2, **cfg), pairs=pairs, vocabulary=list(VOCAB), data_fingerprint="f",
          out_dir=tmp_path / "b", progress=False)
    train(tiny_config(steps=4, **cfg), pairs=pairs, vocabulary=list(VOCAB), data_fingerprint="f",
          out_dir=tmp_path / "b", resume=True, progress=False)
    sa = torch.load(tmp_path / "a" / "resume.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "resume.pt", weights_only=True)
    for key, value in sa["classifier"]["state"].items():
        assert torch.equal(value, sb["classifier"]["state"][key]), key
    for key, value in sa["generator"]["state"].items():
        assert torch.equal(value, sb["generator"]["state"][key]), key
    assert sa["history"]["cls"] == sb["history"]["cls"] and sa["history"]["cls"][-1] > 0


def test_the_generator_term_waits_for_cls_start():
    pairs = synthetic_pairs(n=8)
    trainer = Trainer(tiny_config(lambda_cls=1.0, cls_start=2), num_classes=len(VOCAB))
    terms = [trainer.step(pairs) for _ in range(3)]
    assert [t["cls"] > 0 for t in terms] == [False, False, True]
    assert all(t["c"] > 0 for t in terms)  # the classifier learns from the first step


def test_init_from_starts_g_from_a_checkpoint_and_refuses_a_misfit(tmp_path):
    pairs = synthetic_pairs()
    first = train(tiny_config(steps=2), pairs=pairs, vocabulary=list(VOCAB), data_fingerprint="f",
                  out_dir=tmp_path / "a", progress=False).checkpoints[-1]
    tuned = Trainer(tiny_config(init_from=str(first), lambda_cls=1.0), num_classes=len(VOCAB))
    saved = torch.load(first, weights_only=True)["generator"]["state"]
    assert all(torch.equal(v.float(), tuned.G.state_dict()[k].float()) for k, v in saved.items())
    with pytest.raises(ValueError, match="other model arguments"):
        Trainer(tiny_config(init_from=str(first), ngf=16))
    with pytest.raises(ValueError, match="another condition vocabulary"):
        train(tiny_config(steps=1, init_from=str(first)), pairs=pairs, vocabulary=list(VOCAB)[::-1],
              data_fingerprint="f", out_dir=tmp_path / "b", progress=False)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable generator checkpoint"):
        Trainer(tiny_config(init_from=str(tmp_path / "junk.pt")))


def test_blur_keeps_flat_colour_and_erases_a_checker_and_a_one_pixel_frame():
    flat = torch.full((1, 3, 32, 32), 0.3)
    assert torch.allclose(blur(flat, 2.0), flat, atol=1e-6)
    assert torch.equal(blur(flat, 0.0), flat)
    checker = ((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2).float().expand(1, 3, 32, 32) * 2 - 1
    assert checker.abs().mean() == 1.0 and blur(checker, 2.0).abs().max() < 0.01
    frame = torch.zeros(1, 3, 32, 32)
    frame[..., 8, 8:24] = frame[..., 23, 8:24] = frame[..., 8:24, 8] = frame[..., 8:24, 23] = 1.0
    assert blur(frame, 2.0).max() < 0.3  # a one-pixel line keeps under a third of its contrast


def test_blur_passes_gradients_and_refuses_a_sigma_wider_than_the_image():
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    blur(x, 1.0).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="too wide"):
        blur(x, 4.0)


def test_the_classifier_sees_blurred_images_when_cls_blur_is_set(monkeypatch):
    pairs = synthetic_pairs(n=8)
    trainer = Trainer(tiny_config(lambda_cls=1.0, cls_blur=1.5, flip=False), num_classes=len(VOCAB))
    seen = []
    monkeypatch.setattr("generation.train.blur", lambda images, sigma: seen.append(sigma) or images)
    trainer.step(pairs)
    assert seen == [1.5, 1.5]  # G's output and the real crops
