"""Gap filling's cell lock on PostgreSQL (marker postgres): while a batch holds it, other
images of the same condition are inserted without waiting."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from atlas.services.ingestion import image_ingest
from generation import gaps
from generation.gaps import GapPolicy, generation_job_create, generation_job_run
from tests.conftest import make_image_bytes

from .gaps_helpers import small_catalogue, tiny_checkpoint

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def gan_settings(settings, tmp_path):
    settings.GAN_ROOT = tmp_path / "gan"
    settings.GAN_DEVICE = "cpu"


def test_an_upload_of_the_same_condition_does_not_wait_for_a_gap_batch(source, tmp_path_factory, monkeypatch):
    catalogue = small_catalogue(source)
    tiny_checkpoint(tmp_path_factory.getbasetemp())
    job = generation_job_create(policy=GapPolicy(target=3, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    real_counts, outcome = gaps.cell_counts, {}

    def upload_elsewhere() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '5s'")  # blocked longer than this: the lock is too wide
            image = image_ingest(file=make_image_bytes(seed=991, fmt="PNG"), condition=catalogue["melanoma"],
                                 source=source, fitzpatrick_type=1, enqueue_followups=False).image
            outcome["image"] = image.pk
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc
        finally:
            connection.close()

    def counts_while_an_upload_runs(condition, skin_type):
        # Called with the job row and the cell lock held: a curator uploads melanoma now.
        if not outcome:
            other = threading.Thread(target=upload_elsewhere)
            other.start()
            other.join(timeout=60)
        return real_counts(condition, skin_type)

    monkeypatch.setattr(gaps, "cell_counts", counts_while_an_upload_runs)
    assert generation_job_run(job_id=job.pk).outcome == "finished"
    assert "error" not in outcome, outcome.get("error")
    assert outcome.get("image")
    assert gaps.cell_counts(catalogue["melanoma"], 6) == (0, 3)
