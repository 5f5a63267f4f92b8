"""Provenance a teacher can pass on, and no server file path in any public output: the API,
the image pages and export zips are scanned for absolute paths after a real gap-filling job
(its checkpoint lives at an absolute temporary path) and beside an older image whose
provenance still records `checkpoint_path`."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User

from atlas.models import Image
from atlas.provenance import looks_like_server_path, public_provenance
from atlas.services.ingestion import image_ingest
from generation.review import synthetic_images_review
from generation.services import gan_training_data_describe
from tests.conftest import make_image_bytes
from tests.generation.gaps_helpers import small_catalogue

pytestmark = pytest.mark.django_db

# An absolute path anywhere in a text: /home/..., /tmp/..., C:\... (a URL's path follows a host name).
ABSOLUTE = re.compile(r"(?<![\w.:/\-])(?:/(?:home|tmp|work|srv|var|usr|root|opt|mnt|Users|private)/|[A-Za-z]:\\\\)")


@pytest.fixture
def published(api_client_for, source, gan_checkpoint, django_capture_on_commit_callbacks):
    catalogue = small_catalogue(source)
    gan_checkpoint.data_description = gan_training_data_describe(image_keys=[i.sha256 for i in catalogue["allowed"]])
    gan_checkpoint.save()
    staff = api_client_for("staff")
    with django_capture_on_commit_callbacks(execute=True):
        staff.post("/api/v1/generation/jobs/", {"target": 1, "condition": ["melanoma"], "fitzpatrick": [6]}, format="json")
    legacy = image_ingest(
        file=make_image_bytes(seed=77, fmt="PNG"), condition=catalogue["melanoma"], source=source, origin="synthetic",
        fitzpatrick_type=5, enqueue_followups=False,
        provenance={"model": "DermGAN", "checkpoint_path": "/srv/atlas/var/gan/runs/old/step_0000500.pt",
                    "notes": {"dataset": "/home/curator/datasets/abc/manifest.json"}},
    ).image
    reviewer = User.objects.create_user("rita", is_staff=True)
    reviewer.groups.add(Group.objects.get(name="Reviewers"))
    ids = list(Image.objects.synthetic().values_list("public_id", flat=True))
    assert len(ids) == 2
    synthetic_images_review(public_ids=ids, decision="approve", reviewer=User.objects.get(pk=reviewer.pk))
    return {"checkpoint": gan_checkpoint, "legacy": legacy, "synthetic": ids}


def _scan(label: str, text: str, forbidden: list[str]) -> None:
    for root in forbidden:
        assert root not in text, f"{label} shows the server path {root}"
    match = ABSOLUTE.search(text)
    assert match is None, f"{label} shows an absolute path: ...{text[max(0, match.start() - 60):match.start() + 80]}..."


def test_no_server_path_in_the_api_the_pages_or_exports(published, api_client_for, client, django_capture_on_commit_callbacks):
    checkpoint = published["checkpoint"]
    assert checkpoint.path.startswith("/")  # the test is only worth something if there is a path to leak
    forbidden = [checkpoint.path, str(settings.MEDIA_ROOT), str(settings.GAN_ROOT), str(settings.BASE_DIR)]
    public = api_client_for("client")
    outputs = {"images list": public.get("/api/v1/images/?origin=synthetic").content.decode()}
    for public_id in published["synthetic"]:
        outputs[f"API {public_id}"] = public.get(f"/api/v1/images/{public_id}/").content.decode()
        page = client.get(f"/images/{public_id}/")
        assert page.status_code == 200
        outputs[f"page {public_id}"] = page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        job = public.post("/api/v1/exports/", {"origin": "synthetic"}, format="json").json()
    archive = zipfile.ZipFile(io.BytesIO(b"".join(public.get(public.get(job["url"]).json()["download"]).streaming_content)))
    for name in archive.namelist():
        if not name.startswith("images/"):
            outputs[f"export {name}"] = archive.read(name).decode()
    for label, text in outputs.items():
        _scan(label, text, forbidden)
    legacy = outputs[f"API {published['legacy'].public_id}"]
    assert "checkpoint_path" not in legacy and '"dataset":"manifest.json"' in legacy  # a path keeps its file name only


def test_synthetic_rows_say_what_the_model_learnt_from_and_their_review(published, api_client_for, django_capture_on_commit_callbacks):
    summary = published["checkpoint"].data_description["summary"]
    assert "clinical photographs from Test clinic" in summary or "procedural" in summary
    public = api_client_for("client")
    generated = next(i for i in published["synthetic"] if i != published["legacy"].public_id)
    body = public.get(f"/api/v1/images/{generated}/").json()
    assert body["is_synthetic"] is True and body["review_state"] == "approved" and body["regions"]
    assert body["provenance"]["training_data"]["summary"] == summary
    assert body["provenance"]["review"]["reviewer"] == "rita"
    with django_capture_on_commit_callbacks(execute=True):
        job = public.post("/api/v1/exports/", {"origin": "synthetic"}, format="json").json()
    archive = zipfile.ZipFile(io.BytesIO(b"".join(public.get(public.get(job["url"]).json()["download"]).streaming_content)))
    rows = {row["public_id"]: row for row in csv.DictReader(io.StringIO(archive.read("metadata.csv").decode()))}
    row = rows[str(generated)]
    assert (row["is_synthetic"], row["review_state"], row["trained_on"]) == ("true", "approved", summary)
    assert json.loads(row["regions"]) and "fitzpatrick_label_source" in row
    assert rows[str(published["legacy"].public_id)]["trained_on"] == "not recorded"


def test_pending_and_rejected_images_never_reach_an_export(source, api_client_for, django_capture_on_commit_callbacks):
    pending = image_ingest(file=make_image_bytes(seed=5, fmt="PNG"), condition=small_catalogue(source)["melanoma"],
                           source=source, origin="synthetic", fitzpatrick_type=6, enqueue_followups=False,
                           provenance={"model": "DermGAN"}).image
    public = api_client_for("client")
    with django_capture_on_commit_callbacks(execute=True):
        job = public.post("/api/v1/exports/", {}, format="json").json()
    job = public.get(job["url"]).json()
    archive = zipfile.ZipFile(io.BytesIO(b"".join(public.get(job["download"]).streaming_content)))
    assert job["image_count"] + len(job["excluded"]) == Image.objects.public().count() == 7  # the real ones
    assert str(pending.public_id) not in archive.read("metadata.csv").decode()


def test_public_provenance_drops_private_keys_and_cuts_paths_to_file_names():
    scrubbed = public_provenance({"checkpoint_path": "/a/b.pt", "model": "DermGAN", "map": {"f": "C:\\runs\\x.pt"},
                                  "list": ["/var/lib/atlas/y.pt", "3/4"], "url": "https://example.org/a/b"})
    assert scrubbed == {"model": "DermGAN", "map": {"f": "x.pt"}, "list": ["y.pt", "3/4"], "url": "https://example.org/a/b"}
    assert looks_like_server_path("~/x/y") and not looks_like_server_path("melanoma on type 6/6")


def test_public_provenance_keeps_the_copy_gate_verdict_but_not_the_real_image_it_compared_with():
    gates = {"gates": {"results": [{"gate": "copy", "passed": True, "cosine": 0.91, "nearest": "3f2a-hidden",
                                    "hash_distance": 21, "hash_nearest": "9c1b-hidden"}]}}
    scrubbed = public_provenance(gates)
    assert scrubbed == {"gates": {"results": [{"gate": "copy", "passed": True, "cosine": 0.91, "hash_distance": 21}]}}
