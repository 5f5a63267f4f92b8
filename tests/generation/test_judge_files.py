"""Whether the gates' judges are installed, told from their files: a web process that starts a
gap-filling job loads no model (no torch); a classifier without a usable sidecar is the one
case that still reads its file."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from generation import classifier as clf_mod
from generation import gates as gt
from generation.judge_files import GatesMissing, classifier_path, copy_index_path, gates_check_installed

GEOMETRY = (128, 64)


@pytest.fixture(autouse=True)
def gan_root(tmp_path, settings):
    settings.GAN_ROOT = tmp_path / "gan"


def _classifier(vocabulary=("melanoma", "psoriasis"), *, sidecar=True):
    path = classifier_path()
    net = clf_mod.classifier_build(len(vocabulary))
    clf_mod.save(clf_mod.ConditionClassifier(net.eval(), tuple(vocabulary), 32, 128, {"data_fingerprint": "t"}), path)
    if sidecar:
        path.with_suffix(".json").write_text(json.dumps({"bytes": path.stat().st_size, "vocabulary": list(vocabulary)}))
    return path


def _copy_index(*, encoder=True, n=3):
    path = copy_index_path(*GEOMETRY)
    path.parent.mkdir(parents=True)
    gt.CopyIndex(np.eye(n, 4, dtype=np.float32), np.arange(n, dtype=np.uint64), [f"k{i}" for i in range(n)],
                 {"encoder_file": "enc.pt"}).save(path)
    if encoder:
        (path.parent.parent / "encoders").mkdir()
        (path.parent.parent / "encoders" / "enc.pt").write_bytes(b"weights")
    return path


def test_installed_judges_are_checked_without_loading_a_model(monkeypatch):
    _classifier()
    _copy_index()
    for heavy in ("generation.quality", "generation.evaluate", "generation.services"):
        monkeypatch.setitem(sys.modules, heavy, None)  # importing any of them would fail
    assert gates_check_installed(geometry=GEOMETRY, conditions=["melanoma"], enabled=["condition", "copy"]) == (
        "condition", "copy")
    with pytest.raises(GatesMissing, match="not trained on acne, vitiligo.*train_condition_classifier"):
        gates_check_installed(geometry=GEOMETRY, conditions=["vitiligo", "melanoma", "acne"], enabled=["condition"])


def test_a_missing_classifier_says_what_to_run():
    with pytest.raises(GatesMissing, match="real-only classifier.*train_condition_classifier"):
        gates_check_installed(geometry=GEOMETRY, conditions=["melanoma"], enabled=["condition"])
    assert gates_check_installed(geometry=GEOMETRY, conditions=["melanoma"], enabled=["tone"]) == ("tone",)


@pytest.mark.parametrize("sidecar", ["none", "another file's", "older than the file"])
def test_without_a_sidecar_that_describes_it_the_classifiers_own_vocabulary_counts(sidecar):
    path = _classifier(("melanoma", "acne"), sidecar=False)
    side = path.with_suffix(".json")
    if sidecar == "another file's":
        side.write_text(json.dumps({"bytes": path.stat().st_size + 1, "vocabulary": ["vitiligo"]}))
    elif sidecar == "older than the file":
        side.write_text(json.dumps({"bytes": path.stat().st_size, "vocabulary": ["vitiligo"]}))
        os.utime(side, ns=(path.stat().st_mtime_ns - 10**9,) * 2)
    gates_check_installed(geometry=GEOMETRY, conditions=["acne"], enabled=["condition"])  # the file says acne
    with pytest.raises(GatesMissing, match="not trained on vitiligo"):
        gates_check_installed(geometry=GEOMETRY, conditions=["vitiligo"], enabled=["condition"])


def test_the_copy_gate_needs_its_index_its_encoder_and_a_readable_file():
    with pytest.raises(GatesMissing, match=r"near-copy gate.*128 px windows at 64 px.*prepare_gates"):
        gates_check_installed(geometry=GEOMETRY, enabled=["copy"])
    path = _copy_index(encoder=False)
    with pytest.raises(GatesMissing, match="prepare_gates"):
        gates_check_installed(geometry=GEOMETRY, enabled=["copy"])
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.raises(GatesMissing, match="unreadable.*prepare_gates"):
        gates_check_installed(geometry=GEOMETRY, enabled=["copy"])
