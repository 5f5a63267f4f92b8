"""Hidden images' files: stored apart (private/), served only to staff through the image file
view, never by a path that follows from the public id; publishing or hiding moves them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from atlas.models import Image
from atlas.ops.private_files import public_media_patterns
from atlas.services.image_files import image_visibility_set
from atlas.services.ingestion import image_ingest
from tests.conftest import make_image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def hidden(source, melanoma) -> Image:
    return image_ingest(file=make_image_bytes(seed=1), condition=melanoma, source=source, is_public=False).image


@pytest.fixture
def public(source, melanoma) -> Image:
    return image_ingest(file=make_image_bytes(seed=2), condition=melanoma, source=source).image


@pytest.fixture
def staff_client(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_user("curator", is_staff=True))
    return client


@pytest.fixture
def user_client(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_user("reader"))
    return client


def file_url(image: Image, kind: str = "file") -> str:
    return reverse("atlas:image_file", args=[image.public_id, kind])


def files_on_disk(media_root) -> set[str]:
    return {str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file()}


# --- where files are stored -----------------------------------------------------------------


def test_hidden_files_are_stored_under_the_private_prefix(hidden, public, media_root):
    assert hidden.file.name.startswith("private/images/") and hidden.thumbnail.name.startswith("private/thumbnails/")
    assert public.file.name.startswith("images/") and public.thumbnail.name.startswith("thumbnails/")
    assert files_on_disk(media_root) == {hidden.file.name, hidden.thumbnail.name, public.file.name, public.thumbnail.name}


def test_file_names_do_not_follow_from_the_public_id(hidden, public):
    for image in (hidden, public):
        for name in (image.file.name, image.thumbnail.name):
            assert image.public_id.hex not in name and str(image.public_id) not in name


def test_the_database_refuses_a_public_row_with_private_files(hidden, public):
    with pytest.raises(IntegrityError), transaction.atomic():
        Image.objects.filter(pk=hidden.pk).update(is_public=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        Image.objects.filter(pk=public.pk).update(is_public=False)


# --- serving ----------------------------------------------------------------------------------


def test_a_hidden_image_is_not_found_for_anonymous_and_ordinary_users(hidden, client, user_client):
    for who in (client, user_client):
        for kind in ("file", "thumbnail"):
            assert who.get(file_url(hidden, kind)).status_code == 404


def test_staff_get_a_hidden_file_through_the_view(hidden, staff_client):
    response = staff_client.get(file_url(hidden))
    assert response.status_code == 200
    with default_storage.open(hidden.file.name, "rb") as handle:
        assert b"".join(response.streaming_content) == handle.read()
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "private, no-store"


def test_with_nginx_the_view_answers_an_internal_redirect(hidden, staff_client, settings):
    settings.PRIVATE_MEDIA_SERVE = "x-accel"
    response = staff_client.get(file_url(hidden, "thumbnail"))
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == "/media/private/" + hidden.thumbnail.name.removeprefix("private/")


def test_with_apache_the_view_answers_a_sendfile_path(hidden, staff_client, settings, media_root):
    settings.PRIVATE_MEDIA_SERVE = "x-sendfile"
    response = staff_client.get(file_url(hidden))
    assert response.status_code == 200 and response.content == b""
    assert response["X-Sendfile"] == str(media_root / hidden.file.name)


def test_a_public_image_redirects_to_its_public_file(public, client):
    response = client.get(file_url(public))
    assert response.status_code == 302 and response["Location"] == public.file.url


def test_an_unknown_image_is_not_found(client, staff_client):
    url = reverse("atlas:image_file", args=["00000000-0000-0000-0000-000000000000", "file"])
    assert staff_client.get(url).status_code == 404
    assert client.get("/images/not-a-uuid/file/").status_code == 404


@pytest.mark.parametrize(
    "path", ["private/images/ab/x.jpg", "private/", "images/../private/images/ab/x.jpg", "./private/x.jpg", "private"]
)
def test_development_media_serving_never_serves_the_private_prefix(hidden, rf, settings, path):
    from django.http import Http404

    (pattern,) = public_media_patterns()
    match = pattern.resolve(f"media/{path}")
    with pytest.raises(Http404):
        match.func(rf.get(f"/media/{path}"), **match.kwargs)


def test_development_media_serving_serves_public_files(public, rf):
    (pattern,) = public_media_patterns()
    match = pattern.resolve(f"media/{public.file.name}")
    assert match.func(rf.get(f"/media/{public.file.name}"), **match.kwargs).status_code == 200


def test_pages_and_the_api_show_hidden_images_only_by_the_view(hidden, admin_client):
    from atlas.api.serializers import ImageSerializer

    data = ImageSerializer(hidden).data
    assert data["file"] == file_url(hidden) and data["thumbnail"] == file_url(hidden, "thumbnail")
    page = admin_client.get(reverse("admin:atlas_image_change", args=[hidden.pk])).text
    assert file_url(hidden, "thumbnail") in page and "/media/private/" not in page


# --- publishing and hiding move the files ---------------------------------------------------


def test_publishing_moves_the_files_to_new_public_names(hidden, media_root, django_capture_on_commit_callbacks):
    before = (hidden.file.name, hidden.thumbnail.name)
    with django_capture_on_commit_callbacks(execute=True):
        published = image_visibility_set(image=hidden, is_public=True)
    assert published.is_public and Image.objects.get(pk=hidden.pk).is_public
    assert published.file.name.startswith("images/") and published.thumbnail.name.startswith("thumbnails/")
    # New random names: nothing of the private name carries over into the public one.
    assert before[0].rsplit("/", 1)[1] not in published.file.name
    assert files_on_disk(media_root) == {published.file.name, published.thumbnail.name}


def test_hiding_moves_the_files_under_the_private_prefix(public, media_root, django_capture_on_commit_callbacks, client):
    old_url = public.file.url
    with django_capture_on_commit_callbacks(execute=True):
        hidden = image_visibility_set(image=public, is_public=False)
    assert not hidden.is_public and hidden.file.name.startswith("private/images/")
    assert files_on_disk(media_root) == {hidden.file.name, hidden.thumbnail.name}
    assert not (media_root / old_url.removeprefix("/media/")).exists()
    assert client.get(file_url(hidden)).status_code == 404


def test_a_failed_move_leaves_the_image_and_its_files_as_they_were(hidden, media_root, monkeypatch):
    from atlas.services import image_files

    before = files_on_disk(media_root)
    calls = []

    def failing_copy(name, new_name):
        if calls:
            raise OSError("disk full")
        calls.append(new_name)
        return image_files.default_storage.save(new_name, image_files.ContentFile(b"x"))

    monkeypatch.setattr(image_files, "_copy", failing_copy)
    with pytest.raises(OSError):
        image_visibility_set(image=hidden, is_public=True)
    hidden.refresh_from_db()
    assert not hidden.is_public and files_on_disk(media_root) == before


def test_publishing_in_the_admin_moves_the_files(hidden, admin_client, media_root, django_capture_on_commit_callbacks):
    post = {
        "condition": hidden.condition_id, "is_public": "on", "fitzpatrick_type": "", "fitzpatrick_label_source": "",
        "monk_tone": "", "body_site": "", "case_id": "", "external_id": "", "source": hidden.source_id,
        "licence": "CC-BY-4.0", "attribution": "checked by a curator",
        "regions-TOTAL_FORMS": "0", "regions-INITIAL_FORMS": "0", "regions-MIN_NUM_FORMS": "0", "regions-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:atlas_image_change", args=[hidden.pk]), post)
    assert response.status_code == 302, response.text[:2000]
    image = Image.objects.get(pk=hidden.pk)
    assert image.is_public and image.attribution == "checked by a curator"
    assert image.file.name.startswith("images/")
    assert files_on_disk(media_root) == {image.file.name, image.thumbnail.name}


def test_the_admin_actions_publish_and_hide(hidden, public, admin_client, django_capture_on_commit_callbacks):
    url = reverse("admin:atlas_image_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"action": "publish", "_selected_action": [hidden.pk, public.pk]})
    assert set(Image.objects.values_list("is_public", flat=True)) == {True}
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"action": "hide", "_selected_action": [hidden.pk]})
    image = Image.objects.get(pk=hidden.pk)
    assert not image.is_public and image.file.name.startswith("private/")


# --- the upgrade: files of images hidden before this change move under private/ -----------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_moves_existing_hidden_files_and_keeps_public_ones(media_root):
    import importlib
    import uuid

    from django.core.files.base import ContentFile
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = ("atlas", "0005_condition_lay_phrases"), ("atlas", "0006_image_files_follow_visibility")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    try:
        old_apps = executor.loader.project_state([before]).apps
        OldImage, Source, Condition = (old_apps.get_model("atlas", name) for name in ("Image", "Source", "Condition"))
        source = Source.objects.create(name="Legacy", slug="legacy", licence="CC-BY-4.0")
        condition = Condition.objects.get(slug="melanoma")
        rows = {}
        for n, is_public in enumerate((False, True)):
            public_id = uuid.uuid4()
            names = [
                default_storage.save(f"{folder}/{public_id.hex[:2]}/{public_id.hex}.jpg", ContentFile(make_image_bytes(seed=n)))
                for folder in ("images", "thumbnails")
            ]
            rows[is_public] = OldImage.objects.create(
                public_id=public_id, file=names[0], thumbnail=names[1], sha256=f"{n:064x}", width=64, height=48,
                condition=condition, source=source, licence="CC-BY-4.0", is_public=is_public,
            )  # fmt: skip
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate([after])
        # Then every later migration, so the current model's columns exist again.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    hidden, public = Image.objects.get(pk=rows[False].pk), Image.objects.get(pk=rows[True].pk)
    assert hidden.file.name.startswith("private/images/") and hidden.thumbnail.name.startswith("private/thumbnails/")
    assert hidden.public_id.hex not in hidden.file.name
    assert public.file.name == rows[True].file.name  # public files stay where their URLs point
    assert files_on_disk(media_root) == {hidden.file.name, hidden.thumbnail.name, public.file.name, public.thumbnail.name}
    with default_storage.open(hidden.file.name, "rb") as handle:
        assert handle.read() == make_image_bytes(seed=0)
    assert importlib.import_module("atlas.migrations.0006_image_files_follow_visibility").Migration.atomic is False
