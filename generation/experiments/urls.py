from django.urls import path

from generation.experiments import quiz_views, views

app_name = "experiments"

urlpatterns = [
    path("studies/", views.study_list, name="study_list"),
    path("studies/<uuid:public_id>/", views.study_detail, name="study_detail"),
    path("studies/<uuid:public_id>/open/", views.study_set_open, name="study_set_open"),
    path("studies/<uuid:public_id>/results/", views.study_results, name="study_results"),
    path("studies/<uuid:public_id>/results.png", views.study_results_png, name="study_results_png"),
    path("studies/<uuid:public_id>/results.csv", views.study_results_csv, name="study_results_csv"),
    path("read/<uuid:public_id>/", views.read, name="read"),
    path("invite/<str:token>/", views.invite_claim, name="invite_claim"),
    path("image/<str:token>.png", views.item_image, name="item_image"),
    path("quiz/", quiz_views.quiz_list, name="quiz_list"),
    path("quiz/start/", quiz_views.quiz_start, name="quiz_start"),
    path("quiz/progress/", quiz_views.quiz_progress, name="quiz_progress"),
    path("quiz/round/<uuid:public_id>/", quiz_views.quiz_round, name="quiz_round"),
    path("quiz/round/<uuid:public_id>/<int:position>/", quiz_views.quiz_round_item, name="quiz_round_item"),
    path("quiz/picture/<str:token>.jpg", quiz_views.quiz_picture, name="quiz_picture"),
    path("quiz/<uuid:public_id>/", quiz_views.quiz, name="quiz"),
    path("quiz/<uuid:public_id>/answer/<str:token>/", quiz_views.quiz_answer, name="quiz_answer"),
]
