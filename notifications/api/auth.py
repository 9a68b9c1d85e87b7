"""Who is calling: certctl's named API keys, DRF database tokens, or a Django session.

Both kinds of key arrive as `Authorization: Bearer <key>` so that certctl's clients work unchanged.
"""
import hmac
import logging
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from notifications.services import Actor

log = logging.getLogger("certctl.api")

KEYWORD = "Bearer"
REALM = 'Bearer realm="certctl"'
CHANGE_PERMISSION = "notifications.change_notificationevent"


@dataclass(frozen=True)
class NamedKey:
    name: str
    key: str
    admin: bool


@lru_cache(maxsize=8)
def parse_named_keys(raw):
    """Parse certctl's CERTCTL_API_KEYS_NAMED, "name:key[:admin],…". Errors name the entry, never the key."""
    keys = []
    names = set()
    for position, entry in enumerate((part.strip() for part in raw.split(",")), start=1):
        if not entry:
            continue
        parts = entry.split(":")
        name = parts[0].strip()
        where = f"CERTCTL_API_KEYS_NAMED entry {position} ({name or 'no name'})"
        if len(parts) not in (2, 3) or not name or not parts[1]:
            raise ImproperlyConfigured(f"{where} is not valid: expected name:key or name:key:admin, comma-separated.")
        if len(parts) == 3 and parts[2].strip().lower() != "admin":
            raise ImproperlyConfigured(f"{where} is not valid: the third part may only be 'admin', got {parts[2]!r}.")
        if name in names:
            raise ImproperlyConfigured(f"{where} repeats the name {name!r}: each key needs its own name (it is the actor).")
        names.add(name)
        keys.append(NamedKey(name=name, key=parts[1], admin=len(parts) == 3))
    return tuple(keys)


def auth_disabled():
    return settings.CERTCTL_AUTH_TYPE == "none"


def check_configuration():
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

    def get_username(self):
        return self.username

    def has_perm(self, perm, obj=None):
        return self.admin and perm == CHANGE_PERMISSION

    def __str__(self):
        return self.username


def match_named_key(presented):
    """The named key equal to `presented`, or None."""
    presented_bytes = presented.encode()
    found = None
    # Compare against every key, even after a match, so timing does not tell which entry matched.
    for named in parse_named_keys(settings.CERTCTL_API_KEYS_NAMED):
        if hmac.compare_digest(named.key.encode(), presented_bytes) and found is None:
            found = named
    return found


class BearerKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`, checked against the named keys, then against database tokens."""

    def authenticate(self, request):
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

    def authenticate_header(self, request):
        return REALM


def actor_for(request):
    """The Actor recorded on operator actions: the key's name or the Django username."""
    return Actor(request.user.get_username() or "anonymous", "api")
