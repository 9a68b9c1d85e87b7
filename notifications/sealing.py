"""Secrets at rest: a destination's secret fields are stored as one Fernet token (cryptography's MultiFernet).

CERTCTL_SECRETS_KEYS holds one or more Fernet keys, comma-separated: the first encrypts, every one decrypts, so a
key is rotated by putting the new one first, running `notifications rotate-secrets` (which re-encrypts every stored
token under the first key), then dropping the old one.
"""
import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SealingError(Exception):
    """A secret cannot be sealed or opened: no key is configured, a key is malformed, or no key opens a token."""


def _keys() -> list[Fernet]:
    raw = [key.strip() for key in (settings.CERTCTL_SECRETS_KEYS or "").split(",") if key.strip()]
    if not raw:
        raise SealingError(
            "CERTCTL_SECRETS_KEYS is not set: secret fields cannot be stored. Set it to a Fernet key "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'); "
            "./bin/run generates one into .env"
        )
    keys = []
    for position, key in enumerate(raw, start=1):
        try:
            keys.append(Fernet(key))
        except ValueError:
            raise SealingError(
                f"CERTCTL_SECRETS_KEYS: key {position} is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    return keys


def _fernet() -> MultiFernet:
    return MultiFernet(_keys())


def seal(values: Mapping[str, str]) -> str:
    """`values` as one token under the first key; "" for no values, so that nothing secret needs no key."""
    if not values:
        return ""
    return _fernet().encrypt(json.dumps(dict(values), sort_keys=True).encode()).decode()


def unseal(token: str) -> dict[str, str]:
    """The values sealed in `token` ({} for "")."""
    if not token:
        return {}
    try:
        opened = _fernet().decrypt(token.encode())
    except InvalidToken:
        raise SealingError(
            "no key in CERTCTL_SECRETS_KEYS opens a stored secret: was a key removed before `notifications "
            "rotate-secrets` re-encrypted under the new one?"
        ) from None
    values: dict[str, str] = json.loads(opened)
    return values


def reseal(token: str) -> str:
    """`token` re-encrypted under the first key (the same token when it is "")."""
    if not token:
        return ""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SealingError("no key in CERTCTL_SECRETS_KEYS opens a stored secret") from None
