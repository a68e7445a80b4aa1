from django.urls import path

from . import metrics_api

urlpatterns = [
    path("cache/", metrics_api.CacheMetricsView.as_view(), name="metrics-cache"),
]
