from rest_framework import pagination
from rest_framework.exceptions import ValidationError

POSITIVE = ["A positive whole number is required."]


def _positive(raw: str | None) -> bool:
    return raw is None or (raw.isascii() and raw.isdigit() and int(raw) > 0)


class PageNumberPagination(pagination.PageNumberPagination):
    """``?page=N&page_size=M`` (at most 100 per page; more is clamped to 100).

    DRF silently falls back to page 1 for an empty ``page`` (and accepts ``page=last``), and to the default size
    for a ``page_size`` that is not a positive integer; here each is a 400 naming the field, like every other bad
    query parameter (found by the fuzz test). A page past the end stays DRF's 404."""

    page_size_query_param = "page_size"
    max_page_size = 100
    last_page_strings = ()

    def paginate_queryset(self, queryset, request, view=None):
        if not _positive(request.query_params.get(self.page_query_param)):
            raise ValidationError({self.page_query_param: POSITIVE})
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        if not _positive(request.query_params.get(self.page_size_query_param)):
            raise ValidationError({self.page_size_query_param: POSITIVE})
        return super().get_page_size(request)
