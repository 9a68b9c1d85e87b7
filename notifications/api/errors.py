"""One error shape for everything under /api/: {"error": <HTTP reason>, "message": …, "request_id": …}.

Validation errors add "fields": {"<field>": "<what is wrong>"} so that clients can point at the input.
"""
import logging
import math
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, NotRequired, TypedDict

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from notifications.api.parsers import too_large_message
from notifications.errors import (
    DestinationConflict,
    DestinationNotFound,
    EventNotFound,
    InvalidInput,
    RequeueRefused,
    RouteNotFound,
    UnknownChannel,
    Unprocessable,
)
from notifications.ratelimit import failed_authentication_wait

API_PREFIX = "/api/"

log = logging.getLogger("certctl.api")


class ErrorBody(TypedDict):
    error: str
    message: str
    request_id: str
    fields: NotRequired[Mapping[str, str]]


def request_id_of(request: HttpRequest) -> str:
    return getattr(request, "request_id", None) or "-"


def error_body(
    status_code: int, message: str, request: HttpRequest, fields: Mapping[str, str] | None = None
) -> ErrorBody:
    body = ErrorBody(error=HTTPStatus(status_code).phrase, message=message, request_id=request_id_of(request))
    if fields:
        body["fields"] = fields
    return body


def _flatten(detail: object, prefix: str = "") -> dict[str, str]:
    """DRF's nested error detail as {"field": "message; message"}, with list items as field[3]."""
    if isinstance(detail, dict):
        flat: dict[str, str] = {}
        for name, value in detail.items():
            if isinstance(name, int):
                key = f"{prefix}[{name}]"
            else:
                name = "input" if name == "non_field_errors" else name
                key = f"{prefix}.{name}" if prefix else name
            flat.update(_flatten(value, key))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "input": "; ".join(str(item) for item in detail)}
        flat = {}
        for index, item in enumerate(detail):
            if item:
                flat.update(_flatten(item, f"{prefix}[{index}]"))
        return flat
    return {prefix or "input": str(detail)}


def _fields_message(fields: Mapping[str, str]) -> str:
    return "invalid input: " + "; ".join(f"{name}: {text}" for name, text in fields.items())


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context["request"]
    if isinstance(exc, Unprocessable):
        return Response(
            error_body(422, _fields_message(exc.errors), request, fields=dict(exc.errors)), status=422
        )
    if isinstance(exc, InvalidInput):
        return Response(
            error_body(400, _fields_message(exc.errors), request, fields=dict(exc.errors)), status=400
        )
    if isinstance(exc, (EventNotFound, UnknownChannel, DestinationNotFound, RouteNotFound)):
        return Response(error_body(404, exc.message, request), status=404)
    if isinstance(exc, (RequeueRefused, DestinationConflict)):
        return Response(error_body(409, exc.message, request), status=409)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        wait = failed_authentication_wait(request)
        if wait is not None:
            seconds = math.ceil(wait)
            response = drf_exception_handler(exceptions.Throttled(wait=seconds), context)
            message = (
                f"too many requests without a valid API key from {request.META.get('REMOTE_ADDR') or 'this address'}; "
                f"retry in {seconds} s with a valid key (valid keys are not held up)"
            )
            if response is not None:  # DRF answers every APIException
                response.data = error_body(429, message, request)
            return response
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django's handler500 answers, in the same shape
    if isinstance(exc, exceptions.NotAuthenticated):
        message = "no API key: send 'Authorization: Bearer <key>', or log in for the browsable API"
        response.data = error_body(response.status_code, message, request)
    elif isinstance(exc, exceptions.MethodNotAllowed):
        allowed = ", ".join(context["view"].allowed_methods)
        message = f"{request.method} is not allowed on {request.path}; use {allowed}"
        response.data = error_body(response.status_code, message, request)
    elif isinstance(exc, exceptions.Throttled):
        message = (
            f"rate limit of {settings.CERTCTL_RATE_LIMIT_RPS:g} requests/s "
            # drf-stubs leave out the wait (whole seconds or None) that Throttled keeps.
            f"(bursts of {settings.CERTCTL_RATE_LIMIT_BURST}) reached for this caller; "
            f"retry in {exc.wait or 1} s"  # type: ignore[attr-defined]
        )
        response.data = error_body(response.status_code, message, request)
    elif isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        response.data = error_body(response.status_code, _fields_message(fields), request, fields=fields)
    else:
        detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
        response.data = error_body(response.status_code, str(detail), request)
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _json_error(request: HttpRequest, status_code: int, message: str) -> JsonResponse:
    return JsonResponse(error_body(status_code, message, request), status=status_code)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        return payload_too_large(request)
    if _is_api(request):
        return _json_error(
            request, 400, "the request could not be read (malformed or too large); check its headers and body"
        )
    return defaults.bad_request(request, exception)


def payload_too_large(request: HttpRequest) -> HttpResponse:
    """413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE: Django refuses it when the API's parser or a form reads it."""
    if _is_api(request):
        return _json_error(request, 413, too_large_message())
    # A page of its own: the request never reached the session middleware, so base.html knows no user.
    return HttpResponse(render_to_string("413.html"), status=413)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _json_error(request, 403, str(exception) if exception and str(exception) else "access denied")
    return defaults.permission_denied(request, exception)


@csrf_exempt
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    """Any path under /api/ that no endpoint claims, for every method: no CSRF check (Bearer clients have no
    token, and there is nothing to protect), the JSON 404 also with DJANGO_DEBUG=true."""
    return page_not_found(request)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _json_error(
            request, status.HTTP_404_NOT_FOUND,
            f"no API endpoint at {request.path}; paths have no trailing slash, and /api/v1/docs lists them all",
        )
    return defaults.page_not_found(request, exception)


# How long a client should wait before trying again while the database does not answer.
DATABASE_RETRY_AFTER_SECONDS = 10


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: the request was fine, the database did not answer (down, restarting, unreachable)."""
    response: HttpResponse
    if _is_api(request):
        response = _json_error(
            request, 503,
            f"the database is not answering; nothing was changed, retry in {DATABASE_RETRY_AFTER_SECONDS} s",
        )
    else:
        # A page of its own: base.html asks the session (the database) who is logged in.
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """Turns a lost database connection in any view (UI, API, admin) into database_unavailable's 503."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)):
            log.warning("database unavailable: %s: %s", type(exception).__name__, exception)
            return database_unavailable(request)
        return None


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return _json_error(
            request, 500,
            "unexpected server error; it has been logged with this request_id, give it to the operator",
        )
    return defaults.server_error(request)
