"""Reader studies from the staff side: the admin (read-only records, close / reopen actions),
the close / reopen buttons of the study page, the staff navigation link, and the module split
(augmentation study and reader studies apart)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

import generation.experiments
from generation.experiments import reader_studies as svc
from generation.models import ReaderAnswer, ReaderStudy
from tests.generation.test_experiments_reader import _answer, _link_client, _study, catalogue  # noqa: F401


@pytest.fixture
def staff_client(db):
    client = Client()
    client.force_login(get_user_model().objects.create_user("curator", password="pw", is_staff=True))
    return client


def test_admin_lists_studies_with_counts_and_shows_the_draw_read_only(admin_client, catalogue):
    study = _study()
    _link_client(study)
    page = admin_client.get(reverse("admin:generation_readerstudy_changelist")).text
    assert study.name in page and ">8<" in page and ">1<" in page  # 8 images, 1 reader
    change = admin_client.get(reverse("admin:generation_readerstudy_change", args=[study.pk])).text
    assert reverse("generation:experiments:study_detail", args=[study.public_id]) in change
    assert 'name="seed"' not in change and 'name="items-0-is_real"' not in change  # the draw is a record
    assert admin_client.get(reverse("admin:generation_readerstudy_add")).status_code == 403
    assert admin_client.get(reverse("admin:generation_readeranswer_changelist")).status_code == 200


def test_admin_actions_close_and_reopen_through_the_service(admin_client, catalogue):
    study = _study()
    client, invite = _link_client(study)
    url = reverse("admin:generation_readerstudy_changelist")
    admin_client.post(url, {"action": "close_studies", "_selected_action": [study.pk]})
    study.refresh_from_db()
    assert not study.is_open
    read = reverse("generation:experiments:read", args=[study.public_id])
    assert "This study is closed" in client.get(read).content.decode()
    item = svc.study_next_item(invite=invite)
    refused = client.post(read, {"item": item.token, "origin": "real", "shows": "yes"}, follow=True).content.decode()
    assert "this study is closed" in refused and not ReaderAnswer.objects.exists()
    admin_client.post(url, {"action": "reopen_studies", "_selected_action": [study.pk]})
    study.refresh_from_db()
    assert study.is_open
    _answer(client, study)
    assert ReaderAnswer.objects.filter(invite=invite).count() == 1


def test_study_page_closes_and_reopens(staff_client, catalogue):
    study = _study()
    reader, invite = _link_client(study)
    url = reverse("generation:experiments:study_set_open", args=[study.public_id])
    page = staff_client.post(url, {"open": "0"}, follow=True).content.decode()
    assert "Study closed" in page and "Reopen the study" in page
    assert not ReaderStudy.objects.get(pk=study.pk).is_open
    read = reverse("generation:experiments:read", args=[study.public_id])
    item = svc.study_next_item(invite=invite)
    refused = reader.post(read, {"item": item.token, "origin": "real", "shows": "yes"}, follow=True).content.decode()
    assert "this study is closed" in refused and not ReaderAnswer.objects.exists()
    page = staff_client.post(url, {"open": "1"}, follow=True).content.decode()
    assert "Study reopened" in page and "Close the study" in page
    _answer(reader, study)
    assert ReaderAnswer.objects.filter(invite=invite).count() == 1
    listing = staff_client.get(reverse("generation:experiments:study_list")).content.decode()
    assert "<td>open</td>" in listing


def test_only_staff_close_a_study(catalogue):
    study = _study()
    url = reverse("generation:experiments:study_set_open", args=[study.public_id])
    reader, _ = _link_client(study)
    assert reader.post(url, {"open": "0"}).status_code in (302, 403)
    user = Client()
    user.force_login(get_user_model().objects.create_user("student"))
    assert user.post(url, {"open": "0"}).status_code == 403
    assert ReaderStudy.objects.get(pk=study.pk).is_open


def test_staff_navigation_links_to_studies(staff_client, db):
    studies = reverse("generation:experiments:study_list")
    home = reverse("atlas:home")
    assert f'href="{studies}"' in staff_client.get(home).content.decode()
    for visitor in (Client(),):
        assert f'href="{studies}"' not in visitor.get(home).content.decode()
    student = Client()
    student.force_login(get_user_model().objects.create_user("student"))
    assert f'href="{studies}"' not in student.get(home).content.decode()


def test_the_two_studies_live_in_separate_modules():
    root = Path(generation.experiments.__file__).parent
    assert not (root / "services.py").exists()

    def imports(name: str) -> set[str]:
        tree = ast.parse((root / name).read_text())
        return {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}

    assert "generation.experiments.augmentation_study" not in imports("reader_studies.py")
    assert "generation.experiments.reader_studies" not in imports("augmentation_study.py")
    assert "generation.models" not in imports("augmentation_study.py")  # the augmentation study keeps no rows
    for name in ("reader_studies.py", "augmentation_study.py"):
        text = (root / name).read_text()
        for marker in ("rest_framework", "django.http", "Http404"):
            assert marker not in text, f"{name} uses {marker}"
