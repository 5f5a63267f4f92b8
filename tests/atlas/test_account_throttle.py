"""Sign-in (the accounts page and the admin's) and sign-up attempts are counted per address:
past the rate the answer is 429 with Retry-After, and nothing is checked or created."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def account_rates(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "sign_in": "3/min", "sign_up": "2/hour"},
    }


@pytest.fixture
def learner():
    return get_user_model().objects.create_user("learner", password="a-long-passphrase-42")


def _sign_in(client, password, *, path=None, **extra):
    return client.post(path or reverse("accounts:login"), {"username": "learner", "password": password}, **extra)


def test_password_guessing_is_refused_past_the_rate_even_with_the_right_password(account_rates, learner, client):
    assert [_sign_in(client, f"guess-{n}").status_code for n in range(3)] == [200, 200, 200]  # the form's error
    refused = _sign_in(client, "a-long-passphrase-42")
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
    assert b"Too many sign-in attempts" in refused.content
    assert "_auth_user_id" not in client.session  # the right password was not even checked
    assert client.get(reverse("accounts:login")).status_code == 200  # reading the page is not an attempt
    # Another address has its own count.
    assert _sign_in(client, "a-long-passphrase-42", REMOTE_ADDR="192.0.2.9").status_code == 302


def test_the_admins_sign_in_shares_the_count(account_rates, learner, client):
    staff = get_user_model().objects.create_user("staffer", password="another-passphrase-7", is_staff=True)
    for n in range(3):
        _sign_in(client, f"guess-{n}", path="/admin/login/")
    refused = client.post("/admin/login/", {"username": staff.username, "password": "another-passphrase-7"})
    assert refused.status_code == 429 and "_auth_user_id" not in client.session
    assert _sign_in(client, "a-long-passphrase-42").status_code == 429  # the accounts page too


def test_the_admins_sign_in_still_works_under_the_rate(account_rates, client):
    get_user_model().objects.create_user("staffer", password="another-passphrase-7", is_staff=True)
    response = client.post("/admin/login/?next=/admin/", {"username": "staffer", "password": "another-passphrase-7",
                                                           "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_account_floods_are_refused_and_create_nothing(account_rates, client):
    def sign_up(name):
        response = client.post(reverse("accounts:signup"), {"username": name, "password1": "a-long-passphrase-42",
                                                            "password2": "a-long-passphrase-42"})
        client.post(reverse("accounts:logout"))
        return response

    assert [sign_up(f"student{n}").status_code for n in range(2)] == [302, 302]
    refused = sign_up("student2")
    assert refused.status_code == 429 and b"Too many account requests" in refused.content
    assert sorted(get_user_model().objects.values_list("username", flat=True)) == ["student0", "student1"]
    assert _sign_in(client, "whatever").status_code == 200  # signing in has its own count
