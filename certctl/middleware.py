"""Request ids (one per request, on the response and on every log line it causes) and the Content-Security-Policy."""
import contextvars
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest
from django.http.response import HttpResponseBase

current_request_id = contextvars.ContextVar("current_request_id", default="-")

_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Probes and scrapes would drown the access log.
_QUIET_PATHS = ("/health", "/ready", "/metrics", "/static/")

access_log = logging.getLogger("certctl.request")


class RequestIDMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _WELL_FORMED.match(incoming) else uuid.uuid4().hex
        # An attribute of our own on Django's request, as middleware do; readers use getattr(request, "request_id").
        request.request_id = request_id  # type: ignore[attr-defined]
        token = current_request_id.set(request_id)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            if not request.path.startswith(_QUIET_PATHS):
                access_log.info(
                    "%s %s %s %dms", request.method, request.path, response.status_code,
                    (time.monotonic() - started) * 1000,
                    extra={"method": request.method, "path": request.path, "status_code": response.status_code},
                )
        finally:
            current_request_id.reset(token)
        return response


class RequestIDLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            # django.request logs after the middleware has returned, but hands over the request itself.
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "request_id", None) or current_request_id.get()
        return True


# Scripts, styles, images and fonts from this site only: no inline script or style, no framing, forms post here.
_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
CONTENT_SECURITY_POLICY = "; ".join(f"{name} {value}" for name, value in _POLICY.items())
# DRF's browsable API lays out its page with style attributes; scripts stay as strict there.
API_CONTENT_SECURITY_POLICY = "; ".join(
    f"{name} {value}" for name, value in {**_POLICY, "style-src": "'self' 'unsafe-inline'"}.items()
)


class ContentSecurityPolicyMiddleware:
    """Sends the Content-Security-Policy with every response that does not set its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        policy = API_CONTENT_SECURITY_POLICY if request.path.startswith("/api/") else CONTENT_SECURITY_POLICY
        response.headers.setdefault("Content-Security-Policy", policy)
        return response
