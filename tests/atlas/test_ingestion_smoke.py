import pytest
from django.core.files.storage import default_storage

from atlas.models import Image, Region
from atlas.services.ingestion import Box, IngestionError, image_ingest
from tests.conftest import make_image_bytes


@pytest.mark.django_db
def test_it_stores_an_image_with_regions_and_thumbnail(source, melanoma):
    result = image_ingest(
        file=make_image_bytes(fmt="PNG"), condition=melanoma, source=source, fitzpatrick_type=5,
        fitzpatrick_label_source="dermatologist", regions=[Box(1, 2, 10, 10)],
    )
    assert result.created
    image = result.image
    assert (image.width, image.height) == (64, 48)
    assert image.licence == "CC-BY-4.0"
    assert Region.objects.filter(image=image).count() == 1
    assert default_storage.exists(image.file.name) and default_storage.exists(image.thumbnail.name)


@pytest.mark.django_db
def test_a_duplicate_is_reported_and_stores_nothing(source, melanoma, media_root):
    data = make_image_bytes(fmt="PNG")
    first = image_ingest(file=data, condition=melanoma, source=source)
    files_before = sorted(p for p in media_root.rglob("*") if p.is_file())
    second = image_ingest(file=data, condition=melanoma, source=source)
    assert not second.created and second.image.pk == first.image.pk
    assert Image.objects.count() == 1
    assert sorted(p for p in media_root.rglob("*") if p.is_file()) == files_before


@pytest.mark.django_db
def test_a_region_outside_leaves_nothing_behind(source, melanoma, media_root):
    with pytest.raises(IngestionError) as error:
        image_ingest(file=make_image_bytes(), condition=melanoma, source=source, regions=[Box(60, 0, 10, 10)])
    assert error.value.code == "region_outside"
    assert Image.objects.count() == 0
    assert not [p for p in media_root.rglob("*") if p.is_file()]
