"""prepare_demo: the local start-up step of `make run`."""

import json
import shutil

import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError

from atlas.demo.prepare import DEMO_USERNAME, demo_user_ensure
from atlas.services.ingestion import Box, image_ingest
from generation import quality
from generation.models import GanCheckpoint
from generation.services import DEMO_CHECKPOINT, demo_checkpoint_ensure
from search import training as search_services
from search.clip_train import data_fingerprint
from tests.conftest import make_image_bytes


def test_it_refuses_outside_local_mode(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="local mode only"):
        call_command("prepare_demo")


@pytest.mark.django_db
def test_the_demo_login_is_created_once():
    assert "created" in demo_user_ensure()
    assert "exists" in demo_user_ensure()
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.get(username=DEMO_USERNAME).is_staff


@pytest.mark.django_db
def test_the_shipped_search_model_is_copied_only_when_the_data_matches(source, melanoma, settings, tmp_path, monkeypatch):
    image_ingest(file=make_image_bytes(seed=1), condition=melanoma, source=source, fitzpatrick_type=2)
    settings.SEARCH_CLIP_PRETRAINED = str(tmp_path / "live" / "model.pt")
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setattr(search_services, "DEMO_MODEL_DIR", shipped)
    (shipped / f"{settings.SEARCH_CLIP_MODEL}.pt").write_bytes(b"weights")
    meta = shipped / f"{settings.SEARCH_CLIP_MODEL}.json"

    meta.write_text(json.dumps({"data_fingerprint": "0000000000000000"}))
    assert "none for this catalogue" in search_services.demo_model_ensure(train_if_stale=False)
    assert not (tmp_path / "live").exists()

    meta.write_text(json.dumps({"data_fingerprint": data_fingerprint(search_services.clip_samples())}))
    assert "copied" in search_services.demo_model_ensure(train_if_stale=False)
    assert (tmp_path / "live" / "model.pt").read_bytes() == b"weights"
    assert "present" in search_services.demo_model_ensure(train_if_stale=False)


@pytest.mark.django_db
def test_the_shipped_gan_checkpoint_is_not_used_for_other_data(source, melanoma):
    image_ingest(file=make_image_bytes(seed=2), condition=melanoma, source=source, fitzpatrick_type=5, regions=[Box(2, 2, 20, 20)])
    message = demo_checkpoint_ensure(train_if_stale=False)
    assert "no checkpoint for this catalogue" in message
    assert not GanCheckpoint.objects.exists()


@pytest.mark.django_db
def test_the_shipped_condition_classifier_is_installed_only_when_the_data_matches(source, melanoma, settings, tmp_path, monkeypatch):
    image_ingest(file=make_image_bytes(seed=3), condition=melanoma, source=source, fitzpatrick_type=5, regions=[Box(2, 2, 20, 20)])
    settings.GAN_ROOT = tmp_path / "gan"
    shipped = tmp_path / "shipped" / "condition-classifier.pt"
    shipped.parent.mkdir()
    shipped.write_bytes(b"weights")
    monkeypatch.setattr(quality, "DEMO_CLASSIFIER", shipped)
    meta = shipped.with_suffix(".json")

    meta.write_text(json.dumps({"data_fingerprint": "0" * 64}))
    assert "none for this catalogue" in quality.demo_classifier_ensure(train_if_stale=False)
    assert not quality.classifier_path().exists()

    plan = quality.clf_mod.TrainingPlan()
    fingerprint = quality.data_fingerprint(quality.real_records(), quality.catalogue_vocabulary(), quality._fingerprint_params(plan))
    meta.write_text(json.dumps({"data_fingerprint": fingerprint}))
    assert "installed the shipped" in quality.demo_classifier_ensure(train_if_stale=False)
    assert quality.classifier_path().read_bytes() == b"weights"
    assert "present" in quality.demo_classifier_ensure(train_if_stale=False)


@pytest.mark.parametrize("path", [DEMO_CHECKPOINT, search_services.DEMO_MODEL_DIR / "atlas-clip-rn.pt", quality.DEMO_CLASSIFIER])
def test_shipped_demo_models_describe_how_they_were_made(path):
    meta = json.loads(path.with_suffix(".json").read_text())
    assert path.stat().st_size < 10 * 1024 * 1024
    assert "manage.py" in meta["command"] and meta["data_fingerprint"] and meta["code_version"]


@pytest.mark.django_db
def test_a_registered_shipped_checkpoint_records_its_sidecars_fingerprint(tmp_path):
    from generation.services import gan_checkpoint_register

    copy = tmp_path / DEMO_CHECKPOINT.name
    shutil.copyfile(DEMO_CHECKPOINT, copy)
    sidecar = json.loads(DEMO_CHECKPOINT.with_suffix(".json").read_text())
    copy.with_suffix(".json").write_text(json.dumps(sidecar))
    inside = torch.load(copy, weights_only=True)["data_fingerprint"]
    assert sidecar["data_fingerprint"] != inside  # re-keyed: the file still carries the old value
    row = gan_checkpoint_register(path=copy)
    assert row.data_fingerprint == sidecar["data_fingerprint"]
    # What planning reads, so a web process plans without loading the file (torch).
    state = torch.load(copy, weights_only=True)
    assert (row.vocabulary, row.image_size, row.crop_window) == (state["vocabulary"], 128, 128)
    copy.with_suffix(".json").write_text("{not json")  # a damaged sidecar: the file's own value
    assert gan_checkpoint_register(path=copy).data_fingerprint == inside


@pytest.mark.django_db
def test_loaded_shipped_models_name_their_sidecars_fingerprint(tmp_path):
    """The GAN report and every description read a loaded model's fingerprint: for a shipped
    file it is the (re-keyed) sidecar's, with the file's own kept beside it."""
    from generation.services import gan_generator_load

    for shipped, load in ((DEMO_CHECKPOINT, lambda p: gan_generator_load(checkpoint=p)),
                          (quality.DEMO_CLASSIFIER, lambda p: quality.condition_classifier_load(path=p))):  # fmt: skip
        copy = tmp_path / shipped.name
        shutil.copyfile(shipped, copy)
        sidecar = json.loads(shipped.with_suffix(".json").read_text())
        copy.with_suffix(".json").write_text(json.dumps(sidecar))
        inside = torch.load(copy, weights_only=False)
        inside = inside.get("data_fingerprint") or inside["meta"]["data_fingerprint"]
        meta = load(copy).meta
        assert meta["data_fingerprint"] == sidecar["data_fingerprint"] != inside
        assert meta["data_fingerprint_in_file"] == inside
