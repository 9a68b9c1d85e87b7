"""Failed logins on the UI's and the admin's login pages count against the client address, in the same bucket and
under the same rule as failed API keys (notifications.ratelimit): once an address has used up its failures,
its login attempts get 429 before any password is checked (hashing one costs about half a second of CPU).
A successful login counts nothing."""
import math
from collections.abc import Callable
from typing import Any

from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from notifications.ratelimit import authentication_failures_wait, failed_authentication_wait

# URL names of the views that check a password.
LOGIN_VIEWS = frozenset({"login", "admin:login"})


class LoginThrottleMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> HttpResponse | None:
        match = request.resolver_match
        if request.method != "POST" or match is None or match.view_name not in LOGIN_VIEWS:
            return None
        wait = authentication_failures_wait(request)
        if wait is None:
            return None
        seconds = math.ceil(wait)
        address = request.META.get("REMOTE_ADDR") or "your address"
        # A page of its own, as 503.html: this runs before the user is known.
        response = HttpResponse(
            render_to_string("429.html", {"address": address, "seconds": seconds}), status=429
        )
        response["Retry-After"] = str(seconds)
        return response


def count_failed_login(
    sender: object, credentials: dict[str, Any], request: HttpRequest | None = None, **_: Any
) -> None:
    if request is not None:
        failed_authentication_wait(request)


def connect() -> None:
    user_login_failed.connect(count_failed_login, dispatch_uid="notifications.web.logins.count_failed_login")
