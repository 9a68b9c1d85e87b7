"""Liveness and readiness for load balancers and orchestrators; no authentication."""
from django.db import connection
from django.http import JsonResponse


def health(request):
    return JsonResponse({"status": "ok"})


def ready(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return JsonResponse(
            {"status": "unavailable", "reason": f"database unreachable: {type(exc).__name__}: {exc}"[:300]}, status=503
        )
    return JsonResponse({"status": "ready"})
