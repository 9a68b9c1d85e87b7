"""certctl's named API keys (CERTCTL_API_KEYS_NAMED, "name:key[:admin],…"): read once here for the REST API, the
MCP server and redaction."""
import hmac
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class NamedKey:
    name: str
    key: str
    admin: bool


@lru_cache(maxsize=8)
def parse_named_keys(raw: str) -> tuple[NamedKey, ...]:
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
            raise ImproperlyConfigured(
                f"{where} repeats the name {name!r}: each key needs its own name (it is the actor)."
            )
        names.add(name)
        keys.append(NamedKey(name=name, key=parts[1], admin=len(parts) == 3))
    return tuple(keys)


def match_named_key(presented: str) -> NamedKey | None:
    """The named key equal to `presented`, or None."""
    presented_bytes = presented.encode()
    found = None
    # Compare against every key, even after a match, so timing does not tell which entry matched.
    for named in parse_named_keys(settings.CERTCTL_API_KEYS_NAMED):
        if hmac.compare_digest(named.key.encode(), presented_bytes) and found is None:
            found = named
    return found


def key_values(raw: str) -> tuple[str, ...]:
    """The key of every entry that has one, even in a list parse_named_keys refuses: what redaction must hide."""
    return tuple(parts[1] for parts in (entry.strip().split(":") for entry in raw.split(",")) if len(parts) >= 2)
