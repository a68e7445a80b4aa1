from django.urls import path

from . import views

urlpatterns = [
    path("polls/", views.PollListCreateView.as_view(), name="poll-list"),
    path("polls/<int:poll_id>/", views.PollDetailView.as_view(), name="poll-detail"),
    path("polls/<int:poll_id>/vote/", views.PollVoteView.as_view(), name="poll-vote"),
    path("polls/<int:poll_id>/results/", views.PollResultsView.as_view(), name="poll-results"),
]
