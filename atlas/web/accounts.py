"""Learner accounts: sign in, sign out, sign up (username and password, Django's own forms).

An account is what a learner needs for the quiz's spaced repetition and progress page
(docs/web.md, "Quiz"); everything else in Atlas works without one. Staff sign in here too.
Sign-in attempts (here and on the admin's page) and sign-ups are counted per address
(atlas.api.throttling.account_wait); past the rate the page answers 429 with Retry-After and
nothing is checked or created.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from atlas.api.throttling import account_wait

AFTER_SIGN_IN = "generation:experiments:quiz_list"


def _next(request: HttpRequest) -> str | None:
    target = request.POST.get("next") or request.GET.get("next")
    safe = target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                      require_https=request.is_secure())
    return target if safe else None


def attempts_counted(*, sign_up: bool = False) -> Callable:
    """A view decorator: each POST counts against the address's sign-in (or sign-up) rate;
    past it the answer is 429 before the password is checked or an account is made."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def counted(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "POST" and (wait := account_wait(request, sign_up=sign_up)) is not None:
                what = "account requests" if sign_up else "sign-in attempts"
                response = render(request, "registration/throttled.html",
                                  {"message": f"Too many {what} from your address; nothing was checked. "
                                              f"Try again in {wait} seconds."}, status=429)
                response["Retry-After"] = str(wait)
                return response
            return view(request, *args, **kwargs)

        return counted

    return decorate


@attempts_counted(sign_up=True)
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(_next(request) or AFTER_SIGN_IN)
    return render(request, "registration/signup.html", {"form": form, "next": _next(request) or ""})


app_name = "accounts"

urlpatterns = [
    path("login/", attempts_counted()(auth_views.LoginView.as_view(redirect_authenticated_user=True, next_page=AFTER_SIGN_IN)),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page=AFTER_SIGN_IN), name="logout"),
    path("signup/", signup, name="signup"),
]
