from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class PageNumberPagination(pagination.PageNumberPagination):
    """``?page=N&page_size=M`` (at most 100 per page; more is clamped to 100).

    DRF silently falls back to the default size for a ``page_size`` that is not a positive integer; here that is
    a 400 naming the field, like every other bad query parameter (found by the fuzz test)."""

    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isascii() and raw.isdigit() and int(raw) > 0):
            raise ValidationError({self.page_size_query_param: ["A positive whole number is required."]})
        return super().get_page_size(request)
