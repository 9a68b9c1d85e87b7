"""GET /metrics: django-prometheus' request and database series plus the notification series.

Access: loopback clients, `Authorization: Bearer $CERTCTL_METRICS_TOKEN`, or anyone when
CERTCTL_METRICS_PUBLIC=true. The series reveal queue sizes and per-channel failures, which is
not for the whole network to read.
"""
import hmac
import ipaddress
import logging
import os
from collections.abc import Iterable

import prometheus_client
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import multiprocess
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from notifications.metrics import DatabaseCollector

log = logging.getLogger("certctl.metrics")

_database_collector = DatabaseCollector()

# A reverse proxy on the same host connects from loopback on behalf of remote clients; these
# headers show that it did, and such a request must not pass as local.
_FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


class _Combined(Collector):
    def __init__(self, *collectors: Collector):
        self.collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def _process_registry() -> prometheus_client.CollectorRegistry:
    # Same rule as django-prometheus: with several web worker processes their series are merged from files.
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ:
        registry = prometheus_client.CollectorRegistry()
        # prometheus_client leaves this constructor unannotated.
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return prometheus_client.REGISTRY


def _is_local(request: HttpRequest) -> bool:
    if any(request.headers.get(name) for name in _FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _bearer_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the client may read /metrics; otherwise the 403 answer saying how to get access."""
    if settings.CERTCTL_METRICS_PUBLIC or _is_local(request):
        return None
    expected = settings.CERTCTL_METRICS_TOKEN
    given = _bearer_token(request)
    if expected and given and hmac.compare_digest(given.encode(), expected.encode()):
        return None
    if given and expected:
        reason = "the bearer token does not match CERTCTL_METRICS_TOKEN."
    elif given:
        reason = "a bearer token was sent, but CERTCTL_METRICS_TOKEN is not set on the server."
    else:
        reason = "this client is not on loopback and sent no bearer token."
    log.warning("refused /metrics to %s: %s", request.META.get("REMOTE_ADDR", "?"), reason)
    return HttpResponse(
        f"403 Forbidden: /metrics refused: {reason}\n"
        "To scrape it, set CERTCTL_METRICS_TOKEN on the server and send 'Authorization: Bearer <token>' "
        "(Prometheus: authorization.credentials), scrape from the same host over loopback, "
        "or set CERTCTL_METRICS_PUBLIC=true to serve it to everyone.\n",
        status=403,
        content_type="text/plain; charset=utf-8",
    )


def metrics(request: HttpRequest) -> HttpResponse:
    denied = refusal(request)
    if denied:
        return denied
    body = prometheus_client.generate_latest(_Combined(_process_registry(), _database_collector))
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)
