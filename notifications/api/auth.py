"""Who is calling: certctl's named API keys, DRF database tokens, or a Django session.

Both kinds of key arrive as `Authorization: Bearer <key>` so that certctl's clients work unchanged.
"""
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from notifications.actors import Actor
from notifications.keys import NamedKey, match_named_key, parse_named_keys

if TYPE_CHECKING:
    # For annotations only: DRF imports this module while it loads its views.
    from django.contrib.auth.base_user import AbstractBaseUser
    from rest_framework.request import Request

log = logging.getLogger("certctl.api")

KEYWORD = "Bearer"
REALM = 'Bearer realm="certctl"'
CHANGE_PERMISSION = "notifications.change_notificationevent"


def auth_disabled() -> bool:
    return settings.CERTCTL_AUTH_TYPE == "none"


def check_configuration() -> None:
    """Run at start-up: refuse malformed keys, and say loudly when the API is open to anyone."""
    parse_named_keys(settings.CERTCTL_API_KEYS_NAMED)
    if auth_disabled():
        log.warning(
            "CERTCTL_AUTH_TYPE=none: the REST API accepts every request without a key. Use this for local work only."
        )


@dataclass(frozen=True)
class APIKeyUser:
    """The caller behind a named key; quacks like a Django user where DRF and templates look."""

    username: str
    admin: bool
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return self.admin and perm == CHANGE_PERMISSION

    def __str__(self) -> str:
        return self.username


class BearerKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`, checked against the named keys, then against database tokens."""

    def authenticate(self, request: "Request") -> "tuple[APIKeyUser | AbstractBaseUser, NamedKey | Token] | None":
        if auth_disabled():
            return None
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "malformed Authorization header: send 'Authorization: Bearer <key>' with the key as one word"
            )
        try:
            presented = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("the API key contains characters that are not valid UTF-8") from None
        named = match_named_key(presented)
        if named:
            return APIKeyUser(username=named.name, admin=named.admin), named
        token = Token.objects.select_related("user").filter(key=presented).first()
        if token and token.user.is_active:
            return token.user, token
        raise exceptions.AuthenticationFailed(
            "invalid API key: check the key, or ask an operator for one (CERTCTL_API_KEYS_NAMED or a database token)"
        )

    def authenticate_header(self, request: "Request") -> str:
        return REALM


def actor_for(request: "Request") -> Actor:
    """The Actor recorded on operator actions: the key's name or the Django username."""
    return Actor(request.user.get_username() or "anonymous", "api")
