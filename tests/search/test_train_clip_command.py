"""`manage.py train_clip`, including --init (fine-tuning from a local open_clip checkpoint)."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.search.conftest import MODEL


@pytest.fixture
def catalogue(add_image):
    for number, slug in enumerate(["melanoma", "eczema", "acne", "tinea"] * 3):
        add_image(slug, skin_type=number % 6 + 1)


def test_init_fine_tunes_a_local_checkpoint_at_a_gentle_rate(catalogue, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "tuned.pt"
    call_command("train_clip", "--init", str(tiny_checkpoint), "--model", MODEL, "--epochs", "1", "--out", str(out))
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["model_name"] == MODEL and meta["config"]["lr"] == 1e-5
    assert meta["init"]["path"] == str(tiny_checkpoint)
    assert meta["train_images"] + meta["heldout_images"] == 12
    assert "saved" in capsys.readouterr().out


def test_a_bad_init_is_a_clear_error_that_writes_nothing(catalogue, tmp_path):
    out = tmp_path / "tuned.pt"
    with pytest.raises(CommandError, match="no such file"):
        call_command("train_clip", "--init", str(tmp_path / "nope.pt"), "--epochs", "1", "--out", str(out))
    with pytest.raises(CommandError, match="unknown open_clip model"):
        call_command("train_clip", "--model", "no-such-model", "--epochs", "1", "--out", str(out))
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_text_only_tunes_the_text_tower_of_a_local_checkpoint(catalogue, tiny_checkpoint, tmp_path):
    out = tmp_path / "tuned.pt"
    call_command(
        "train_clip", "--init", str(tiny_checkpoint), "--model", MODEL, "--text-only", "--threads", "1", "--epochs", "1", "--out", str(out)
    )
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["config"]["text_only"] and meta["config"]["threads"] == 1 and meta["config"]["lr"] == 3e-4
    assert meta["init"]["path"] == str(tiny_checkpoint)
    with pytest.raises(CommandError, match="give --init"):
        call_command("train_clip", "--text-only", "--epochs", "1", "--out", str(tmp_path / "other.pt"))
    assert not (tmp_path / "other.pt").exists()
