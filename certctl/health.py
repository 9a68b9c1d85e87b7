"""Liveness and readiness for load balancers and orchestrators; no authentication."""
import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse

log = logging.getLogger("certctl.health")


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def ready(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        # The details (host names, users) stay in the log: this answer is public.
        log.error("readiness check failed: database unreachable: %s: %s", type(exc).__name__, exc)
        return JsonResponse(
            {
                "status": "unavailable",
                "reason": f"database unreachable ({type(exc).__name__}); the server log has the details "
                f"under request id {getattr(request, 'request_id', '-')}",
            },
            status=503,
        )
    return JsonResponse({"status": "ready"})
