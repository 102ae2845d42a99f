from __future__ import annotations

from django.urls import path

from benchmarks.bench_app import views

urlpatterns = [
    path("noredis/", views.noredis),
    path("new/", views.new),
    path("module/", views.module),
    path("django_redis/", views.django_redis),
    path("cache/", views.cache),
    path("request_redis/", views.request_redis),
    path("get_redis/", views.get_redis_view),
]
