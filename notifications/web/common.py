"""What every page of the operator UI shares: who acts, which views need which permission, where to go back to.

Any logged-in user may mark read and dismiss (certctl's read-only role may too, and so may read-only API keys);
requeueing and pausing need the change permission.
"""
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from notifications.actors import Actor

CHANGE_PERMISSION = "notifications.change_notificationevent"


def actor_of(request: HttpRequest) -> Actor:
    return Actor(request.user.get_username(), "ui")


def change_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """POST only, logged in, and allowed to change notifications (403 otherwise)."""
    return login_required(require_POST(permission_required(CHANGE_PERMISSION, raise_exception=True)(view)))


def acknowledge_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """POST only and logged in: marking read and dismissing need no further permission."""
    return login_required(require_POST(view))


def back(request: HttpRequest, fallback: str) -> HttpResponse:
    """Where the form asked to return (its list tab, filters and page), if that is a URL on this site."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect(fallback)


def list_url(params: dict[str, Any]) -> str:
    params = {name: value for name, value in params.items() if value}
    return reverse("ui-notifications") + (f"?{urlencode(params)}" if params else "")
