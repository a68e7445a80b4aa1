from django.urls import path, register_converter

from . import views


class CanonicalId:
    """A positive id written the one way: ``4``, never ``04`` or ``0004`` (a 404), so that rate limits, the cache and
    the detector's path rules see one path per resource."""

    regex = "[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(CanonicalId, "id")

urlpatterns = [
    path("polls/", views.PollListCreateView.as_view(), name="poll-list"),
    path("polls/<id:poll_id>/", views.PollDetailView.as_view(), name="poll-detail"),
    path("polls/<id:poll_id>/vote/", views.PollVoteView.as_view(), name="poll-vote"),
    path("polls/<id:poll_id>/results/", views.PollResultsView.as_view(), name="poll-results"),
]
