from django.contrib import admin
from django.urls import path

from nexus_backend.core import views as core_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", core_views.health, name="health"),
    path("bench/bare/", core_views.bare, name="bare"),
]
