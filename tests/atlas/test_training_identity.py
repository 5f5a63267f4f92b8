"""Training-set fingerprints of procedural demo images do not depend on their bytes.

The same seed renders other JPEG bytes on another machine (numpy and Pillow builds, the CPU's
vector paths). The shipped demo models are used only when the catalogue's fingerprints equal
their sidecars', so a fingerprint of the bytes refused them on a fresh machine and `make run`
trained all three again (an hour on two cores). These tests change the bytes' hash and the
render's boxes the way another machine would and expect every fingerprint to stay; a real
image's content hash must still count.
"""

import pytest

from atlas.demo.seed import demo_atlas_seed
from atlas.models import Image, Region
from generation import classifier as clf_mod
from generation import quality
from generation.services import DEMO_DATASET, gan_dataset_fingerprint
from search.clip_train import data_fingerprint as clip_fingerprint
from search.training import clip_samples

pytestmark = pytest.mark.django_db


def _fingerprints() -> dict[str, str]:
    plan = clf_mod.TrainingPlan()
    return {
        "gan": gan_dataset_fingerprint(**DEMO_DATASET),
        "classifier": quality.data_fingerprint(quality.real_records(), quality.catalogue_vocabulary(),
                                               quality._fingerprint_params(plan)),
        "clip": clip_fingerprint(clip_samples()),
    }


@pytest.fixture
def demo_atlas(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ATLAS_AFTER_DEMO_SEED = []
    demo_atlas_seed(images=12, seed=0, size=64, processes=1)
    return Image.objects.all()


def test_another_machines_bytes_and_boxes_give_the_same_fingerprints(demo_atlas):
    before = _fingerprints()
    image = demo_atlas.filter(regions__isnull=False).first()
    Image.objects.filter(pk=image.pk).update(sha256="f" * 64)  # other JPEG bytes for the same seed
    Region.objects.filter(image=image).update(width=1 + Region.objects.filter(image=image).first().width)
    assert _fingerprints() == before


def test_a_real_images_content_still_counts(demo_atlas):
    demo_atlas.first().source.__class__.objects.update(is_procedural=False)  # as if imported photographs
    before = _fingerprints()
    image = demo_atlas.filter(regions__isnull=False).first()
    Image.objects.filter(pk=image.pk).update(sha256="f" * 64)
    after = _fingerprints()
    assert all(after[name] != before[name] for name in before), (before, after)


def test_what_made_a_procedural_image_counts(demo_atlas):
    before = _fingerprints()
    image = demo_atlas.filter(regions__isnull=False).first()
    Image.objects.filter(pk=image.pk).update(provenance={**image.provenance, "generator": "another-renderer/2"})
    after = _fingerprints()
    assert all(after[name] != before[name] for name in before), (before, after)


def test_training_identity_names_the_seed_not_the_bytes(demo_atlas):
    image = demo_atlas.select_related("source").first()
    assert image.is_procedural
    assert image.training_identity.startswith("procedural:") and image.external_id in image.training_identity
