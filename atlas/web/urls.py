from django.urls import path

from atlas.web import views

app_name = "atlas"

urlpatterns = [
    path("", views.home, name="home"),
]
