from django.conf import settings
from django.http import JsonResponse

from nexus_backend.infra.health import check_all


def health(request):
    """``GET /health/``: 200 when the database, cache and broker all answer, else 503."""
    checks = check_all()
    ok = all(c.ok for c in checks)
    body = {
        "status": "ok" if ok else "degraded",
        "mode": settings.NEXUS_SERVICE_MODE,
        "checks": {c.name: {"ok": c.ok, "detail": c.detail, "ms": c.ms} for c in checks},
    }
    return JsonResponse(body, status=200 if ok else 503)


def bare(request):
    """A view that touches nothing: the baseline the benchmark compares the API against."""
    return JsonResponse({"ok": True})
