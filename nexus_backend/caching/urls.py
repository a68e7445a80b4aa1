from django.urls import path

from . import api

urlpatterns = [
    path("cache/", api.CacheMetricsView.as_view(), name="metrics-cache"),
]
