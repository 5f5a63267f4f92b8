"""Review of synthetic images (generation.review): pending by default, one visibility rule,
approve / reject with a reason, first decision wins, refusals write nothing, gap counting."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from atlas.models import Condition, Image
from atlas.selectors import coverage_matrix
from atlas.services.ingestion import image_ingest
from generation import review
from generation.gaps import GapPolicy, gap_plan
from generation.review import ReviewError, synthetic_images_review
from tests.conftest import make_image_bytes

pytestmark = pytest.mark.django_db

_seeds = iter(range(1, 10_000))


def ingest(source, *, origin: str = "synthetic", skin: int = 6, slug: str = "melanoma") -> Image:
    return image_ingest(
        file=make_image_bytes(seed=next(_seeds), fmt="PNG"), condition=Condition.objects.get(slug=slug), source=source,
        origin=origin, fitzpatrick_type=skin, enqueue_followups=False,
        provenance={"model": "DermGAN", "gates": {"tone": {"passed": True, "measured": 6}}} if origin == "synthetic" else None,
    ).image


def reviewer(name: str = "rita") -> User:
    user = User.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name="Reviewers"))
    return User.objects.get(pk=user.pk)  # fresh: permission cache


def test_synthetic_images_start_pending_and_stay_out_of_every_public_read(source):
    image = ingest(source)
    real = ingest(source, origin="real", skin=5)
    assert image.review_state == "pending" and real.review_state == "not_required"
    assert list(Image.objects.public()) == [real]
    assert set(Image.objects.visible_to(reviewer())) == {image, real}  # staff see it, marked pending
    assert list(Image.objects.visible_to(None)) == [real]
    matrix = coverage_matrix()
    assert (matrix.synthetic("melanoma", 6), matrix.pending("melanoma", 6)) == (0, 1)
    assert matrix.as_dict()["pending"] == 1


def test_with_review_switched_off_synthetic_images_are_public_at_once(source, settings):
    settings.ATLAS_SYNTHETIC_REVIEW = False
    image = ingest(source)
    assert image.review_state == "not_required" and list(Image.objects.public()) == [image]


def test_approve_writes_the_state_and_the_reviewer_into_provenance(source, django_capture_on_commit_callbacks):
    image = ingest(source)
    with django_capture_on_commit_callbacks() as callbacks:
        outcome = synthetic_images_review(public_ids=[image.public_id], decision="approve", reviewer=reviewer())
    assert outcome.decided == [image.public_id] and not outcome.conflicts and len(callbacks) == 1
    image.refresh_from_db()
    assert image.review_state == "approved" and list(Image.objects.public()) == [image]
    entry = image.provenance["review"]
    assert entry["state"] == "approved" and entry["reviewer"] == "rita" and entry["at"]
    assert image.provenance["gates"] == {"tone": {"passed": True, "measured": 6}}  # the rest is kept


def test_reject_needs_a_reason_and_keeps_it(source):
    image = ingest(source)
    with pytest.raises(ReviewError) as refused:
        synthetic_images_review(public_ids=[image.public_id], decision="reject", reviewer=reviewer(), reason="  ")
    assert refused.value.code == "reason_required"
    image.refresh_from_db()
    assert image.review_state == "pending" and "review" not in image.provenance
    synthetic_images_review(public_ids=[image.public_id], decision="reject", reviewer=User.objects.get(username="rita"),
                            reason="no lesion visible")
    image.refresh_from_db()
    assert image.review_state == "rejected" and image.provenance["review"]["reason"] == "no lesion visible"
    assert not Image.objects.public().exists() and not Image.objects.visible_to(reviewer("sam")).exists()


@pytest.mark.parametrize("who", ["staff", "public", "anonymous"])
def test_only_reviewers_may_decide(source, who):
    image = ingest(source)
    user = {"staff": lambda: User.objects.create_user("sam", is_staff=True),
            "public": lambda: User.objects.create_user("pat"), "anonymous": lambda: None}[who]()
    with pytest.raises(ReviewError) as refused:
        synthetic_images_review(public_ids=[image.public_id], decision="approve", reviewer=user)
    assert refused.value.code == "permission_denied"
    image.refresh_from_db()
    assert image.review_state == "pending"


def test_a_batch_naming_a_photograph_or_an_unknown_image_is_refused_whole(source):
    pending = ingest(source)
    real = ingest(source, origin="real", skin=5)
    rita = reviewer()
    with pytest.raises(ReviewError) as refused:
        synthetic_images_review(public_ids=[pending.public_id, real.public_id], decision="approve", reviewer=rita)
    assert refused.value.code == "not_synthetic"
    with pytest.raises(ReviewError) as refused:
        synthetic_images_review(public_ids=[pending.public_id, "00000000-0000-0000-0000-000000000001"],
                                decision="approve", reviewer=rita)
    assert refused.value.code == "not_found"
    with pytest.raises(ReviewError) as refused:
        synthetic_images_review(public_ids=["not-a-uuid"], decision="approve", reviewer=rita)
    assert refused.value.code == "invalid"
    with pytest.raises(ReviewError) as refused:
        synthetic_images_review(public_ids=[pending.public_id], decision="publish", reviewer=rita)
    assert refused.value.code == "invalid"
    pending.refresh_from_db()
    assert pending.review_state == "pending" and "review" not in pending.provenance


def test_the_first_decision_wins_and_the_second_reviewer_is_told(source):
    image = ingest(source)
    rita, sam = reviewer("rita"), reviewer("sam")
    synthetic_images_review(public_ids=[image.public_id], decision="approve", reviewer=rita)
    with pytest.raises(ReviewError) as refused:
        synthetic_images_review(public_ids=[image.public_id], decision="reject", reviewer=sam, reason="blurry")
    assert refused.value.code == "not_pending" and "already approved by rita" in refused.value.message
    image.refresh_from_db()
    assert image.review_state == "approved" and image.provenance["review"]["reviewer"] == "rita"


def test_a_decision_racing_another_matches_no_row(source):
    """Both reviewers loaded the image while pending; the conditional UPDATE lets one through."""
    image = ingest(source)
    rita, sam = reviewer("rita"), reviewer("sam")
    stale = Image.objects.get(pk=image.pk)
    assert review._decide(image, Image.ReviewState.REJECTED, rita, "no lesion") is True
    assert review._decide(stale, Image.ReviewState.APPROVED, sam, "") is False
    image.refresh_from_db()
    assert image.review_state == "rejected" and image.provenance["review"]["reviewer"] == "rita"


def test_a_batch_decides_the_pending_images_and_reports_the_ones_decided_before(source):
    first, second, third = ingest(source), ingest(source), ingest(source)
    rita, sam = reviewer("rita"), reviewer("sam")
    synthetic_images_review(public_ids=[second.public_id], decision="reject", reviewer=rita, reason="cast")
    outcome = synthetic_images_review(public_ids=[first.public_id, second.public_id, third.public_id],
                                      decision="approve", reviewer=sam)
    assert outcome.decided == [first.public_id, third.public_id]
    assert "already rejected by rita" in outcome.conflicts[second.public_id]
    assert set(Image.objects.public()) == {first, third}


def test_a_pending_sample_holds_its_place_and_a_rejected_one_frees_it(source):
    policy = GapPolicy(target=2, conditions=("melanoma",), skin_types=(6,))
    assert gap_plan(policy=policy).total == 2
    images = [ingest(source), ingest(source)]
    assert gap_plan(policy=policy).total == 0  # waiting for review, but counted: no endless generation
    synthetic_images_review(public_ids=[images[0].public_id], decision="reject", reviewer=reviewer(), reason="no lesion")
    assert gap_plan(policy=policy).total == 1  # the next job draws again


def test_the_queue_shows_the_oldest_first_with_real_references_on_neighbouring_types(source):
    for skin in (3, 4, 5, 6, 6):
        ingest(source, origin="real", skin=skin)
    ingest(source, origin="real", skin=5, slug="tinea")  # another condition: never a reference
    older, newer = ingest(source, skin=5), ingest(source, skin=5)
    queue = review.review_queue()
    assert [item.image for item in queue] == [older, newer]
    item = queue[0]
    assert sorted(ref.fitzpatrick_type for ref in item.references) == [4, 5, 6, 6]
    assert all(ref.condition.slug == "melanoma" and not ref.is_synthetic for ref in item.references)
    assert item.reference_types == "IV-VI"
    assert item.gate_rows == [{"name": "tone", "passed": True, "detail": '{"measured": 6}'}]
