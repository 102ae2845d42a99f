from __future__ import annotations

from django.urls import path

from demoapp import views

app_name = "demoapp"

urlpatterns = [
    path("", views.index, name="index"),
    path("hits/", views.hits, name="hits"),
    path("ratelimit/", views.ratelimit, name="ratelimit"),
    path("incr-get/", views.incr_get, name="incr-get"),
    path("cached/", views.cached, name="cached"),
    path("session/", views.session, name="session"),
    path("health/", views.health, name="health"),
]
