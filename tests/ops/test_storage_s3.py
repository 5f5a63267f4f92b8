"""S3-compatible object storage by settings, against moto's S3 server on loopback (marker s3).

The same code paths as with local files: ingestion writes images and thumbnails through
default_storage, embedding reads them back, the index is published to the bucket and a
replica fetches it from there.
"""

from __future__ import annotations

import logging
import time

import boto3
import pytest
from django.core.files.storage import default_storage
from moto.server import ThreadedMotoServer

from atlas.models import Condition, Image
from atlas.services.ingestion import IngestionError, image_ingest
from search import distribution
from search.index import IndexStore
from search.indexing import index_rebuild
from search.query import search_text
from tests.conftest import make_image_bytes
from tests.ops.conftest import free_port

pytestmark = [pytest.mark.s3, pytest.mark.django_db]

BUCKET = "atlas-test"


@pytest.fixture(scope="module")
def s3_server():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 call otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET, "endpoint_url": s3_server, "region_name": "us-east-1",
                "access_key": "testing", "secret_key": "testing", "default_acl": None,
                "querystring_auth": True, "file_overwrite": False,
            },
        },
    }
    yield client
    objects = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    for obj in objects:
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _keys(client) -> set[str]:
    return {obj["Key"] for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_ingestion_stores_images_and_thumbnails_in_the_bucket(s3, source, melanoma, media_root):
    from storages.backends.s3 import S3Storage

    assert isinstance(default_storage, S3Storage)
    image = image_ingest(file=make_image_bytes(seed=3), condition=melanoma, source=source, fitzpatrick_type=5).image
    assert _keys(s3) == {image.file.name, image.thumbnail.name}
    assert not any(media_root.rglob("*.jpg"))  # nothing on local disk
    assert image.file.url.startswith(s3.meta.endpoint_url) and "Signature" in image.file.url
    with default_storage.open(image.file.name, "rb") as handle:
        assert handle.read(3) == b"\xff\xd8\xff"  # JPEG, read back through the storage API


def test_a_refused_upload_leaves_no_object_and_no_row(s3, source, melanoma):
    with pytest.raises(IngestionError):
        image_ingest(file=b"not an image", condition=melanoma, source=source)
    assert _keys(s3) == set() and Image.objects.count() == 0


def test_index_is_published_to_the_bucket_and_fetched_by_a_replica(s3, search_settings, add_image, settings, tmp_path):
    settings.SEARCH_INDEX_PUBLISH = True
    for slug, t in (("melanoma", 2), ("melanoma", 6), ("psoriasis", 4)):
        add_image(slug, skin_type=t)
    build = index_rebuild()  # embeds from thumbnails read out of the bucket
    assert build.vector_count == 3
    assert {f"search-index/index-{build.pk:06d}.faiss", f"search-index/index-{build.pk:06d}.json"} <= _keys(s3)
    expected = [h.image.pk for h in search_text(query="melanoma").hits]
    replica = IndexStore(tmp_path / "replica")
    assert distribution.index_fetch(store=replica) == build.pk
    settings.SEARCH_INDEX_DIR = replica.directory
    from search.query import reset_caches

    reset_caches()
    result = search_text(query="melanoma")
    assert result.index_version == str(build.pk) and [h.image.pk for h in result.hits] == expected
    assert Condition.objects.filter(slug="melanoma").exists()


# --- hidden images: their own prefix, short-lived presigned URLs for staff only ---------------


def test_hidden_images_live_under_the_private_prefix_and_move_when_published(
    s3, source, melanoma, django_capture_on_commit_callbacks
):
    from atlas.services.image_files import image_visibility_set

    hidden = image_ingest(file=make_image_bytes(seed=4), condition=melanoma, source=source, is_public=False).image
    assert _keys(s3) == {hidden.file.name, hidden.thumbnail.name}
    assert all(key.startswith("private/") for key in _keys(s3))
    with django_capture_on_commit_callbacks(execute=True):
        public = image_visibility_set(image=hidden, is_public=True)
    assert _keys(s3) == {public.file.name, public.thumbnail.name}
    assert not any(key.startswith("private/") for key in _keys(s3))
    with django_capture_on_commit_callbacks(execute=True):
        again = image_visibility_set(image=public, is_public=False)
    assert _keys(s3) == {again.file.name, again.thumbnail.name} and all(k.startswith("private/") for k in _keys(s3))


def test_staff_get_a_hidden_file_by_a_short_lived_presigned_url(s3, source, melanoma, settings, client, admin_client):
    import urllib.request
    from urllib.parse import parse_qs, urlsplit

    from django.urls import reverse

    settings.PRIVATE_MEDIA_URL_SECONDS = 45
    hidden = image_ingest(file=make_image_bytes(seed=5), condition=melanoma, source=source, is_public=False).image
    url = reverse("atlas:image_file", args=[hidden.public_id, "file"])
    assert client.get(url).status_code == 404  # anonymous: as if it did not exist
    response = admin_client.get(url)
    assert response.status_code == 302 and response["Cache-Control"] == "private, no-store"
    location = response["Location"]
    query = parse_qs(urlsplit(location).query)
    assert urlsplit(location).path.endswith(hidden.file.name)
    if "X-Amz-Expires" in query:  # signature v4: a lifetime in seconds
        assert query["X-Amz-Expires"] == ["45"]
    else:  # signature v2: an absolute expiry time
        assert 0 < int(query["Expires"][0]) - time.time() <= 46
    with urllib.request.urlopen(location) as fetched:  # noqa: S310 - moto on loopback
        assert fetched.read(3) == b"\xff\xd8\xff"
    unsigned = location.split("?", 1)[0]
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(unsigned)  # noqa: S310 - without the signature the object is not served
