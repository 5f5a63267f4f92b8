import os
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command

from atlas.services.ingestion import image_ingest
from atlas.services.orphans import orphan_files_sweep
from tests.conftest import make_image_bytes


def _age(name: str, hours: float) -> None:
    past = time.time() - hours * 3600
    os.utime(default_storage.path(name), (past, past))


@pytest.mark.django_db
def test_it_removes_old_orphans_and_keeps_referenced_and_recent_files(source, melanoma):
    image = image_ingest(file=make_image_bytes(seed=3), condition=melanoma, source=source).image
    orphan = default_storage.save("images/zz/orphan.jpg", ContentFile(b"x"))
    recent = default_storage.save("thumbnails/zz/recent.jpg", ContentFile(b"y"))
    for name in (image.file.name, image.thumbnail.name, orphan):
        _age(name, 3)

    report = orphan_files_sweep(older_than=timedelta(hours=1))

    assert report.removed == [orphan]
    assert report.too_young == 1
    assert not default_storage.exists(orphan)
    assert default_storage.exists(recent)
    assert default_storage.exists(image.file.name) and default_storage.exists(image.thumbnail.name)


@pytest.mark.django_db
def test_a_dry_run_lists_and_removes_nothing(capsys):
    orphan = default_storage.save("images/zz/orphan.png", ContentFile(b"x"))
    _age(orphan, 2)
    call_command("sweep_orphan_files", "--dry-run")
    assert f"would remove {orphan}" in capsys.readouterr().out
    assert default_storage.exists(orphan)


@pytest.mark.django_db
def test_an_empty_storage_is_fine():
    assert orphan_files_sweep().checked == 0
