from django.urls import path

from nexus_lab import views

urlpatterns = [
    path("bench/bare/", views.bare, name="bare"),
]
