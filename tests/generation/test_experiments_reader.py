"""Reader studies: drawing, invitations, blinded answering, one answer per image, results, quiz."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from atlas.models import Condition, Image
from atlas.services.ingestion import image_ingest
from generation.experiments import quiz
from generation.experiments import reader_studies as svc
from generation.models import ReaderAnswer, ReaderStudy, StudyInvite
from tests.conftest import approved, make_image_bytes


def _ingest(source, slug: str, seed: int, *, synthetic: bool, skin: int) -> Image:
    # Synthetic images start pending review; studies draw approved ones, so the fixture approves.
    return approved(image_ingest(
        file=make_image_bytes(48 if not synthetic else 32, 48 if not synthetic else 32, seed=seed,
                              fmt="JPEG" if not synthetic else "PNG"),
        condition=Condition.objects.get(slug=slug), source=source, fitzpatrick_type=skin,
        origin=Image.Origin.SYNTHETIC if synthetic else Image.Origin.REAL, enqueue_followups=False,
        provenance={"model": "DermGAN", "checkpoint": "test@1", "seed": seed} if synthetic else None,
    ).image)


@pytest.fixture
def catalogue(source):
    seed = 0
    for slug in ("melanoma", "psoriasis"):
        for synthetic in (False, True):
            for k in range(3):
                seed += 1
                _ingest(source, slug, seed, synthetic=synthetic, skin=1 + k)
    seed += 1
    _ingest(source, "acne", seed, synthetic=False, skin=2)  # no synthetic acne: left out of realism studies


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("curator", password="pw", is_staff=True)


@pytest.fixture
def staff_client(staff):
    client = Client()
    client.force_login(staff)
    return client


def _study(**kwargs) -> ReaderStudy:
    return svc.reader_study_create(**{"name": "Pilot", "per_condition": 2, "seed": 1, **kwargs})


def _link_client(study: ReaderStudy) -> tuple[Client, StudyInvite]:
    [(invite, token)] = svc.study_invites_create(study=study, links=1)
    client = Client()
    assert client.get(reverse("generation:experiments:invite_claim", args=[token])).status_code == 302
    return client, invite


def _answer(client: Client, study: ReaderStudy, *, origin="real", shows="yes"):
    page = client.get(reverse("generation:experiments:read", args=[study.public_id])).content.decode()
    token = re.search(r'name="item" value="([^"]+)"', page).group(1)
    response = client.post(reverse("generation:experiments:read", args=[study.public_id]),
                           {"item": token, "origin": origin, "shows": shows})
    return token, response


def test_realism_study_draws_n_real_and_n_synthetic_per_condition(catalogue):
    study = _study(skin_types=[1, 2])
    items = list(study.items.select_related("condition", "image"))
    counts = {(i.condition.slug, i.is_real) for i in items}
    assert counts == {("melanoma", True), ("melanoma", False), ("psoriasis", True), ("psoriasis", False)}
    assert len(items) == 8 and all(i.skin_type in (1, 2) for i in items)
    assert all(i.is_real == (i.image.origin == "real") for i in items)
    assert sorted(i.position for i in items) == list(range(1, 9))
    again = _study(skin_types=[1, 2])
    assert [i.image_id for i in again.items.all()] == [i.image_id for i in items]  # seeded draw


def test_bad_study_input_changes_nothing(catalogue):
    for kwargs, message in [({"name": " "}, "name"), ({"per_condition": 0}, "1-200"), ({"skin_types": [7]}, "I-VI"),
                            ({"conditions": ["nope"]}, "unknown condition"), ({"conditions": ["acne"]}, "no images match")]:
        with pytest.raises(svc.StudyError, match=message):
            _study(**kwargs)
    assert not ReaderStudy.objects.exists()


def test_reader_page_and_image_never_reveal_the_truth(catalogue):
    study = _study()
    client, invite = _link_client(study)
    item = svc.study_next_item(invite=invite)
    page = client.get(reverse("generation:experiments:read", args=[study.public_id])).content.decode()
    image = item.image
    for secret in (str(image.public_id), image.file.name, image.sha256, image.thumbnail.name):
        assert secret not in page
    assert f"Does this image show {item.condition.name}?" in page
    # A page shows the same thing for a real and a synthetic image, bar the token, name and position.
    pages = {}
    while len(pages) < 2:
        current = svc.study_next_item(invite=invite)
        html = client.get(reverse("generation:experiments:read", args=[study.public_id])).content.decode()
        for varying in (current.token, current.condition.name):
            html = html.replace(varying, "X")
        html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", re.sub(r"\d+ of \d+", "K of N", html))
        pages.setdefault(current.is_real, html)
        _answer(client, study)
    assert pages[True] == pages[False]
    sizes = set()
    for each in study.items.all():
        response = client.get(reverse("generation:experiments:item_image", args=[each.token]))
        assert response["Content-Type"] == "image/png"
        with PILImage.open(io.BytesIO(response.content)) as served:
            sizes.add((served.format, served.size, len(response.content), tuple(served.info)))
    assert sizes == {("PNG", (256, 256), 224_000, ())}  # real (48 px JPEG) and synthetic (32 px PNG) look alike


def test_a_reader_cannot_answer_twice(catalogue):
    study = _study()
    client, invite = _link_client(study)
    token, response = _answer(client, study)
    assert response.status_code == 302
    again = client.post(reverse("generation:experiments:read", args=[study.public_id]),
                        {"item": token, "origin": "synthetic", "shows": "no"}, follow=True)
    assert "already answered" in again.content.decode()
    answers = ReaderAnswer.objects.filter(invite=invite)
    assert answers.count() == 1 and answers.get().judged_real is True
    with pytest.raises(svc.StudyError, match="already answered"):
        svc.reader_answer_record(invite=invite, item_token=token, judged_real=False, shows_condition=False)


def test_one_time_link_belongs_to_the_first_browser(catalogue):
    study = _study()
    [(invite, token)] = svc.study_invites_create(study=study, links=1)
    first, second = Client(), Client()
    assert first.get(reverse("generation:experiments:invite_claim", args=[token])).status_code == 302
    refused = second.get(reverse("generation:experiments:invite_claim", args=[token]))
    assert refused.status_code == 403 and "another browser" in refused.content.decode()
    assert second.get(reverse("generation:experiments:read", args=[study.public_id])).status_code == 403
    assert Client().get(reverse("generation:experiments:invite_claim", args=["made-up"])).status_code == 403
    assert invite.token_hash != token and token not in invite.token_hash  # only the hash is stored


def test_strangers_and_readers_cannot_see_images_results_or_others_answers(catalogue, staff_client):
    study = _study()
    reader_a, _ = _link_client(study)
    reader_b, _ = _link_client(study)
    _answer(reader_a, study)
    item = study.items.first()
    assert Client().get(reverse("generation:experiments:item_image", args=[item.token])).status_code == 403
    page_b = reader_b.get(reverse("generation:experiments:read", args=[study.public_id])).content.decode()
    assert "Image 1 of 8" in page_b  # B's own progress, untouched by A
    for name in ("study_results", "study_results_csv", "study_detail"):
        url = reverse(f"generation:experiments:{name}", args=[study.public_id])
        assert reader_a.get(url).status_code in (302, 403)
        assert staff_client.get(url).status_code == 200


def test_account_reader_and_results(catalogue, staff_client):
    study = _study()
    reader = get_user_model().objects.create_user("reader1", password="pw")
    svc.study_invites_create(study=study, usernames=["reader1"])
    with pytest.raises(svc.StudyError, match="already invited"):
        svc.study_invites_create(study=study, usernames=["reader1"])
    with pytest.raises(svc.StudyError, match="no active account"):
        svc.study_invites_create(study=study, usernames=["ghost"])
    client = Client()
    client.force_login(reader)
    # The reader calls every image real and says each shows the condition.
    for _ in range(study.items.count()):
        _answer(client, study, origin="real", shows="yes")
    done = client.get(reverse("generation:experiments:read", args=[study.public_id])).content.decode()
    assert "Thank you" in done
    results = svc.study_results(study=study)
    assert results.overall.tpr.mean == 1.0 and results.overall.fpr.mean == 1.0 and results.readers == 1
    rows = list(csv.DictReader(io.StringIO(staff_client.get(
        reverse("generation:experiments:study_results_csv", args=[study.public_id])).content.decode())))
    assert len(rows) == 8 and {r["truth"] for r in rows} == {"real", "synthetic"} and {r["judged_real"] for r in rows} == {"real"}
    page = staff_client.get(reverse("generation:experiments:study_results", args=[study.public_id])).content.decode()
    assert "1.00" in page and "melanoma" in page
    png = staff_client.get(reverse("generation:experiments:study_results_png", args=[study.public_id]))
    assert png["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"


def test_staff_pages_create_a_study_and_links(catalogue, staff_client):
    response = staff_client.post(reverse("generation:experiments:study_list"), {"name": "Web", "kind": "realism", "per_condition": 1})
    study = ReaderStudy.objects.get(name="Web")
    assert response.status_code == 302 and study.items.count() == 4
    page = staff_client.post(reverse("generation:experiments:study_detail", args=[study.public_id]),
                             {"usernames": "", "links": 2}).content.decode()
    assert page.count('class="invite-link"') == 2
    bad = staff_client.post(reverse("generation:experiments:study_list"), {"name": "x", "kind": "realism", "per_condition": 1,
                                                                          "conditions": ["acne"]})
    assert bad.status_code == 200 and "no images match" in bad.content.decode()


def test_quiz_is_anonymous_and_scores_per_skin_type(catalogue):
    study = _study(kind=ReaderStudy.Kind.QUIZ, per_condition=1)
    assert study.items.count() == 7 and all(i.is_real for i in study.items.all())
    visitor = Client()
    url = reverse("generation:experiments:quiz", args=[study.public_id])
    for _ in range(study.items.count()):
        page = visitor.get(url).content.decode()
        token = re.search(r'name="item" value="([^"]+)"', page).group(1)
        item = study.items.get(token=token)
        assert item.condition.slug in item.choices and len(item.choices) == 3  # 3 conditions in this quiz
        choice = item.condition.slug if item.skin_type == 1 else next(c for c in item.choices if c != item.condition.slug)
        visitor.post(url, {"item": token, "chosen": choice})
    score = visitor.get(url).content.decode()
    assert "Your score" in score
    invite = study.invites.get()
    assert {(s.label, s.correct, s.answered) for s in quiz.staff_quiz_summary(invite=invite).scores} == {
        ("Type I", 2, 2), ("Type II", 0, 3), ("Type III", 0, 2)}
    assert Client().get(url).status_code == 200 and study.invites.count() == 2  # another visitor, another session
