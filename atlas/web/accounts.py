"""Learner accounts: sign in, sign out, sign up (username and password, Django's own forms).

An account is what a learner needs for the quiz's spaced repetition and progress page
(docs/web.md, "Quiz"); everything else in Atlas works without one. Staff sign in here too.
"""

from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

AFTER_SIGN_IN = "generation:experiments:quiz_list"


def _next(request: HttpRequest) -> str | None:
    target = request.POST.get("next") or request.GET.get("next")
    safe = target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                      require_https=request.is_secure())
    return target if safe else None


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
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True, next_page=AFTER_SIGN_IN), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page=AFTER_SIGN_IN), name="logout"),
    path("signup/", signup, name="signup"),
]
