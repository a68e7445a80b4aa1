from django.http import JsonResponse


def bare(request):
    """A view that touches nothing: the baseline the benchmarks compare the API against. Routed only where the lab
    app is installed (``nexus_backend/urls.py``), so never in production."""
    return JsonResponse({"ok": True})
