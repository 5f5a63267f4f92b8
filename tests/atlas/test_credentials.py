"""Content credentials: synthetic files are signed at ingestion and on export, and verify."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from atlas.services.exports import export_job_run
from atlas.content_credentials import (
    TRAINED_ALGORITHMIC_MEDIA,
    CredentialsError,
    credentials_read,
    demo_pair_paths,
    demo_pair_write,
    signing_pair_load,
)
from atlas.models import ExportJob, Image, Region
from atlas.services.credentials import credentials_verify, demo_credentials_ensure
from atlas.services.ingestion import IngestionError, image_ingest, read_synthetic_marker
from tests.atlas.c2pa_helpers import write_pair
from tests.conftest import approved, make_image_bytes

PROVENANCE = {
    "model": "DermGAN",
    "checkpoint": "fast-demo.pt@600",
    "checkpoint_path": "/srv/atlas/var/gan/runs/fast/fast-demo.pt",
    "checkpoint_step": 600,
    "data_fingerprint": "abc123",
    "training_data": {"summary": "procedural demo atlas (non-clinical)", "procedural": True},
    "seed": 7,
}


def _synthetic(source, condition, *, seed: int = 1, provenance: dict | None = None) -> Image:
    return image_ingest(
        file=make_image_bytes(seed=seed, fmt="PNG"), condition=condition, source=source, fitzpatrick_type=6,
        origin=Image.Origin.SYNTHETIC, provenance=provenance or PROVENANCE, enqueue_followups=False,
    ).image  # fmt: skip


def _stored(image: Image) -> bytes:
    with image.file.open("rb") as handle:
        return handle.read()


# --- at ingestion ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_synthetic_file_carries_a_verified_manifest_and_its_text_marker(source, melanoma, c2pa_pair):
    data = _stored(_synthetic(source, melanoma))
    report = credentials_verify(data=data, mime_type="image/png")
    assert report.verified and report.trusted and report.state == "Trusted"
    assert report.digital_source_types == [TRAINED_ALGORITHMIC_MEDIA]
    assert report.generation["model"] == "DermGAN" and report.generation["checkpoint"] == "fast-demo.pt@600"
    assert report.generation["checkpoint_step"] == 600 and report.review_state == "pending"
    assert "NOT FOR PRODUCTION" in report.signer
    assert read_synthetic_marker(data)["Atlas-Origin"] == "synthetic"  # the iTXt marker stays


@pytest.mark.django_db
def test_with_review_switched_off_the_manifest_says_no_review_was_required(source, melanoma, settings):
    settings.ATLAS_SYNTHETIC_REVIEW = False
    image = _synthetic(source, melanoma)
    assert image.review_state == "not_required"
    assert credentials_read(_stored(image)).review_state == "not_required"


@pytest.mark.django_db
def test_the_manifest_names_the_checkpoint_and_never_a_server_path(source, melanoma):
    provenance = {**PROVENANCE, "checkpoint": "/srv/atlas/var/gan/runs/fast/fast-demo.pt@600"}
    data = _stored(_synthetic(source, melanoma, provenance=provenance))
    assert credentials_read(data).generation["checkpoint"] == "fast-demo.pt@600"
    assert b"/srv/atlas" not in data  # neither in the manifest nor in the text marker
    assert read_synthetic_marker(data)["Atlas-Checkpoint"] == "fast-demo.pt@600"


@pytest.mark.django_db
def test_a_real_image_has_no_manifest(source, melanoma):
    image = image_ingest(file=make_image_bytes(fmt="PNG"), condition=melanoma, source=source).image
    assert not credentials_read(_stored(image)).has_manifest


@pytest.mark.django_db
@pytest.mark.parametrize("problem", ["other_key", "expired", "missing"])
def test_a_bad_signing_pair_refuses_the_synthetic_image_and_stores_nothing(source, melanoma, settings, tmp_path, media_root, problem):
    key, cert, _ = write_pair(
        tmp_path / "keys", other_key=problem == "other_key", valid_from_days=-10 if problem == "expired" else -1,
        valid_days=5 if problem == "expired" else 30,
    )  # fmt: skip
    settings.ATLAS_C2PA_KEY_FILE = str(tmp_path / "nope.key") if problem == "missing" else str(key)
    settings.ATLAS_C2PA_CERT_FILE = str(cert)
    with pytest.raises(IngestionError) as error:
        _synthetic(source, melanoma)
    assert error.value.code == "credentials_failed"
    assert {"other_key": "does not match", "expired": "expired", "missing": "cannot be read"}[problem] in error.value.message
    assert not Image.objects.exists() and not Region.objects.exists()
    assert [p for p in media_root.rglob("*") if p.is_file()] == []


@pytest.mark.django_db
@pytest.mark.parametrize("ed25519", [False, True], ids=["es256", "ed25519"])
def test_an_operator_pair_signs_and_is_trusted_only_with_its_anchor(source, melanoma, settings, tmp_path, ed25519):
    key, cert, ca = write_pair(tmp_path / "keys", name="hospital", ed25519=ed25519)
    assert signing_pair_load(key, cert).alg == ("ed25519" if ed25519 else "es256")
    settings.ATLAS_C2PA_KEY_FILE, settings.ATLAS_C2PA_CERT_FILE = str(key), str(cert)
    data = _stored(_synthetic(source, melanoma))
    report = credentials_verify(data=data, mime_type="image/png")  # still trusting the demo CA
    assert report.verified and not report.trusted and "hospital signer" in report.signer
    settings.ATLAS_C2PA_TRUST_ANCHORS_FILE = str(ca)
    assert credentials_verify(data=data, mime_type="image/png").trusted


# --- the local demo pair --------------------------------------------------------------------


@pytest.mark.django_db
def test_local_mode_creates_the_demo_pair_on_first_use_and_renews_it_before_it_expires(source, melanoma, settings, tmp_path):
    key, cert, ca = demo_pair_paths(tmp_path / "c2pa")
    settings.ATLAS_C2PA_KEY_FILE, settings.ATLAS_C2PA_CERT_FILE, settings.ATLAS_C2PA_TRUST_ANCHORS_FILE = key, cert, ca
    assert key.name == "demo-NOT-FOR-PRODUCTION.key"
    assert "created" in demo_credentials_ensure() and "present" in demo_credentials_ensure()
    key.unlink()
    assert credentials_verify(data=_stored(_synthetic(source, melanoma)), mime_type="image/png").trusted
    assert key.stat().st_mode & 0o777 == 0o600

    demo_pair_write(key.parent, days=10)  # inside the 30-day renewal window
    image = _synthetic(source, melanoma, seed=2)
    assert signing_pair_load(key, cert).not_after > dt.datetime.now(dt.UTC) + dt.timedelta(days=300)
    assert credentials_verify(data=_stored(image), mime_type="image/png").trusted


@pytest.mark.django_db
def test_without_demo_keys_a_missing_pair_is_an_error_not_a_new_pair(source, melanoma, settings, tmp_path):
    key, cert, _ = demo_pair_paths(tmp_path / "c2pa")
    settings.ATLAS_C2PA_KEY_FILE, settings.ATLAS_C2PA_CERT_FILE, settings.ATLAS_C2PA_DEMO_KEYS = key, cert, False
    with pytest.raises(IngestionError, match="cannot be read"):
        _synthetic(source, melanoma)
    assert not key.exists()


# --- checking a pair ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"other_key": True}, "does not match"),
        ({"valid_from_days": -40, "valid_days": 30}, "expired on"),
        ({"valid_from_days": 2}, "not valid before"),
        ({"self_signed": True}, "self-signed"),
    ],
)
def test_signing_pair_load_says_what_is_wrong(tmp_path, options, message):
    key, cert, _ = write_pair(tmp_path, **options)
    with pytest.raises(CredentialsError, match=message):
        signing_pair_load(key, cert)


def test_signing_pair_load_refuses_unreadable_and_garbage_files(tmp_path):
    key, cert, _ = write_pair(tmp_path)
    with pytest.raises(CredentialsError, match="ATLAS_C2PA_KEY_FILE is not set"):
        signing_pair_load("", cert)
    (tmp_path / "junk").write_text("not a key")
    with pytest.raises(CredentialsError, match="not an unencrypted PEM private key"):
        signing_pair_load(tmp_path / "junk", cert)
    with pytest.raises(CredentialsError, match="not a PEM certificate chain"):
        signing_pair_load(key, tmp_path / "junk")
    pair = signing_pair_load(key, cert)
    assert pair.alg == "es256" and not pair.is_demo


def test_the_system_check_signs_with_a_configured_pair_and_reports_what_c2pa_refuses(settings, tmp_path):
    from atlas.checks import c2pa_signing_check

    settings.ATLAS_C2PA_DEMO_KEYS = False
    key, cert, _ = write_pair(tmp_path / "good")
    settings.ATLAS_C2PA_KEY_FILE, settings.ATLAS_C2PA_CERT_FILE = str(key), str(cert)
    assert c2pa_signing_check(None) == []
    key, cert, _ = write_pair(tmp_path / "no-eku", eku=False)  # readable, matching, in date: C2PA still refuses it
    settings.ATLAS_C2PA_KEY_FILE, settings.ATLAS_C2PA_CERT_FILE = str(key), str(cert)
    errors = c2pa_signing_check(None)
    assert [e.id for e in errors] == ["atlas.E001"] and "cannot be signed" in errors[0].msg


# --- exports --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_export_re_signs_synthetic_files_with_the_review_state_now(source, melanoma):
    synthetic = approved(_synthetic(source, melanoma))  # only approved synthetic images are exported
    real = image_ingest(file=make_image_bytes(seed=5, fmt="PNG"), condition=melanoma, source=source).image
    job = export_job_run(job_id=ExportJob.objects.create(filters={"conditions": ["melanoma"]}).pk)
    assert job.status == "succeeded", job.error
    with job.file.open("rb") as handle:
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    exported = archive.read(f"images/{synthetic.public_id}.png")
    report = credentials_verify(data=exported, mime_type="image/png")
    assert report.verified and report.trusted and report.review_state == "approved"
    assert report.manifest_count == 2 and report.digital_source_types == [TRAINED_ALGORITHMIC_MEDIA]
    assert report.generation["checkpoint"] == "fast-demo.pt@600"
    assert read_synthetic_marker(exported)["Atlas-Origin"] == "synthetic"
    assert archive.read(f"images/{real.public_id}.png") == _stored(real)  # real files leave untouched
    assert "verify_credentials" in archive.read("README.txt").decode()


@pytest.mark.django_db
def test_an_export_that_cannot_sign_fails_and_stores_no_zip(source, melanoma, settings, tmp_path):
    approved(_synthetic(source, melanoma))  # only approved synthetic images are exported (and signed)
    key, cert, _ = write_pair(tmp_path / "keys", other_key=True)
    settings.ATLAS_C2PA_KEY_FILE, settings.ATLAS_C2PA_CERT_FILE = str(key), str(cert)
    job = export_job_run(job_id=ExportJob.objects.create(filters={"conditions": ["melanoma"]}).pk)
    assert job.status == "failed" and "does not match" in job.error
    assert not job.file and not (settings.MEDIA_ROOT / "exports").exists()


# --- verify_credentials ---------------------------------------------------------------------


@pytest.mark.django_db
def test_verify_credentials_reports_each_file_and_fails_when_one_does_not_verify(source, melanoma, tmp_path, capsys):
    good = tmp_path / "good.png"
    good.write_bytes(_stored(_synthetic(source, melanoma)))
    call_command("verify_credentials", str(good))
    out = capsys.readouterr().out
    assert f"{good}: verified (Trusted" in out and TRAINED_ALGORITHMIC_MEDIA in out
    assert "DermGAN, checkpoint fast-demo.pt@600, trained on: procedural demo atlas (non-clinical)" in out
    assert "review state when signed: pending" in out

    tampered = tmp_path / "tampered.png"
    data = bytearray(good.read_bytes())
    data[data.find(b"IDAT") + 8] ^= 0xFF
    tampered.write_bytes(bytes(data))
    plain = tmp_path / "plain.png"
    plain.write_bytes(make_image_bytes(fmt="PNG"))
    with pytest.raises(CommandError, match="3 of 4 file"):
        call_command("verify_credentials", str(good), str(tampered), str(plain), str(tmp_path / "absent.png"), "--json")
    captured = capsys.readouterr()
    rows = {Path(row["file"]).name: row for row in map(json.loads, captured.out.splitlines())}
    assert rows["good.png"]["verified"] and rows["good.png"]["review_state"] == "pending"
    assert not rows["tampered.png"]["verified"] and any("dataHash.mismatch" in f for f in rows["tampered.png"]["failures"])
    assert not rows["plain.png"]["verified"] and not rows["plain.png"]["has_manifest"]
    assert "absent.png: cannot be read" in captured.err
