"""GAN output enters the catalogue signed: the one ingestion path adds its content credentials."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from atlas.content_credentials import TRAINED_ALGORITHMIC_MEDIA
from atlas.models import Image
from atlas.services.credentials import credentials_verify
from generation.gaps import GapPolicy, generation_job_create, generation_job_run

from .gaps_helpers import small_catalogue, tiny_checkpoint


@pytest.fixture(autouse=True)
def gan_settings(tmp_path, settings):
    settings.GAN_ROOT = tmp_path / "gan"
    settings.GAN_DEVICE = "cpu"
    settings.GAP_FILL_BATCH_SIZE = 2


def test_every_generated_file_carries_verified_credentials_naming_its_checkpoint(source, db, tmp_path_factory):
    small_catalogue(source)
    checkpoint = tiny_checkpoint(tmp_path_factory.getbasetemp())
    job = generation_job_create(policy=GapPolicy(target=2, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    generation_job_run(job_id=job.pk)
    images = list(Image.objects.synthetic())
    assert len(images) == 2
    for image in images:
        with default_storage.open(image.file.name, "rb") as handle:
            data = handle.read()
        report = credentials_verify(data=data, mime_type="image/png")
        assert report.verified and report.digital_source_types == [TRAINED_ALGORITHMIC_MEDIA]
        assert report.generation["model"] == "DermGAN" and report.generation["checkpoint"] == image.provenance["checkpoint"]
        assert report.generation["checkpoint_step"] == image.provenance["checkpoint_step"]
        assert report.generation["training_data"] == image.provenance["training_data"]  # what it learnt from
        assert report.generation["trained_on"] == image.provenance["training_data"]["summary"]
        assert checkpoint.path not in data.decode("latin-1")  # the server path stays on the server
