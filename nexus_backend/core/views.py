from django.conf import settings
from django.http import JsonResponse

from nexus_backend.infra.health import check_all


def health(request):
    """``GET /health/``: 200 when the database, cache and broker all answer, else 503.

    In production the body says only ``status`` to the public: which service failed, and how (host names, ports,
    error text), is for the operators who may read ``/metrics`` (``NEXUS_METRICS_ALLOWED_IPS`` or the token)."""
    from .metrics import client_allowed

    checks = check_all()
    ok = all(c.ok for c in checks)
    body = {"status": "ok" if ok else "degraded"}
    if not settings.PRODUCTION or client_allowed(request):
        body["mode"] = settings.NEXUS_SERVICE_MODE
        body["checks"] = {c.name: {"ok": c.ok, "detail": c.detail, "ms": c.ms} for c in checks}
    return JsonResponse(body, status=200 if ok else 503)
