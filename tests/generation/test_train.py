import pytest
import torch

from generation.sample import generate, generator_load
from generation.train import Trainer, train

from .helpers import VOCAB, synthetic_pairs, tiny_config, one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_tiny_model_overfits_four_pairs():
    pairs = synthetic_pairs(n=4)
    cfg = tiny_config(steps=40, lambda_gan=0.0, lambda_fm=0.0, use_dropout=False, flip=False, lr=2e-3, decay_start=1.0)
    trainer = Trainer(cfg)
    first = trainer.step(pairs)["l1"]
    for _ in range(cfg.steps - 1):
        last = trainer.step(pairs)["l1"]
    assert last < 0.3 * first


def test_same_seed_same_weights_and_other_seed_differs():
    pairs = synthetic_pairs()
    a, b, c = Trainer(tiny_config()), Trainer(tiny_config()), Trainer(tiny_config(seed=1))
    for _ in range(2):
        a.step(pairs), b.step(pairs), c.step(pairs)
    for pa, pb in zip(a.G.parameters(), b.G.parameters()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.G.parameters(), c.G.parameters()))


def test_resume_continues_exactly(tmp_path):
    pairs = synthetic_pairs()
    straight = train(tiny_config(steps=4), pairs=pairs, vocabulary=list(VOCAB), data_fingerprint="f",
                     out_dir=tmp_path / "a", progress=False)
    train(tiny_config(steps=2), pairs=pairs, vocabulary=list(VOCAB), data_fingerprint="f", out_dir=tmp_path / "b",
          progress=False)
    resumed = train(tiny_config(steps=4), pairs=pairs, vocabulary=list(VOCAB), data_fingerprint="f",
                    out_dir=tmp_path / "b", resume=True, progress=False)
    assert straight.step == resumed.step == 4
    sa = torch.load(tmp_path / "a" / "resume.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "resume.pt", weights_only=True)
    for key, value in sa["generator"]["state"].items():
        assert torch.equal(value, sb["generator"]["state"][key]), key
    for key, value in sa["discriminator"]["state"].items():
        assert torch.equal(value, sb["discriminator"]["state"][key]), key
    assert sa["history"] == sb["history"]
    assert (tmp_path / "a" / "losses.png").exists() and (tmp_path / "a" / "samples_0000004.png").exists()


def test_resume_refuses_changed_data(tmp_path):
    pairs = synthetic_pairs()
    train(tiny_config(steps=2), pairs=pairs, vocabulary=list(VOCAB), data_fingerprint="f", out_dir=tmp_path, progress=False)
    try:
        train(tiny_config(steps=4), pairs=pairs, vocabulary=list(VOCAB), data_fingerprint="g", out_dir=tmp_path,
              resume=True, progress=False)
    except ValueError as exc:
        assert "fingerprint" in str(exc)
    else:
        raise AssertionError("resume accepted a changed training set")


def test_checkpoint_describes_itself_and_reloads_to_identical_outputs(tmp_path):
    pairs = synthetic_pairs()
    result = train(tiny_config(steps=2), pairs=pairs, vocabulary=list(VOCAB), data_fingerprint="abc",
                   out_dir=tmp_path, progress=False)
    path = result.checkpoints[-1]
    state = torch.load(path, weights_only=True)
    assert state["vocabulary"] == list(VOCAB) and state["data_fingerprint"] == "abc" and state["step"] == 2
    assert state["generator"]["args"]["upsample"] == "resize" and state["config"]["ngf"] == 8
    assert state["code_version"]

    trainer = Trainer(tiny_config())
    trainer.G.load_state_dict(state["generator"]["state"])
    trainer.G.eval()
    loaded = generator_load(path, catalogue=VOCAB)
    maps = pairs.maps[:3].float() / 127.5 - 1
    with torch.no_grad():
        assert torch.equal(trainer.G(maps), loaded.net(maps))

    np_maps = [m.permute(1, 2, 0).numpy() for m in pairs.maps[:3]]
    again = generator_load(path, catalogue=VOCAB)
    first, second = generate(loaded, np_maps, seed=5), generate(again, np_maps, seed=5)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, second))


def test_sample_grids_use_the_batchs_statistics_and_leave_the_running_ones_alone(tmp_path):
    """Training-time grids must show what G does in training, not what stale running
    statistics make of it; and drawing one must not change the model."""
    from generation.train import save_sample_grid

    trainer = Trainer(tiny_config(use_dropout=False))
    pairs = synthetic_pairs()
    norms = [m for m in trainer.G.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms
    grids = []
    for shift in (0.0, 50.0):  # two very different running statistics
        for m in norms:
            m.running_mean.fill_(shift)
        before = {k: v.clone() for k, v in trainer.G.state_dict().items()}
        path = tmp_path / f"grid-{shift}.png"
        save_sample_grid(trainer.G, pairs, path, torch.device("cpu"))
        after = trainer.G.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)  # running stats and counters kept
        assert trainer.G.training
        grids.append(path.read_bytes())
    assert grids[0] == grids[1]  # the picture does not depend on the running statistics
