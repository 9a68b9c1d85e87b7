"""Secrets at rest: sealed under the first key of CERTCTL_SECRETS_KEYS, opened by any, re-sealed by rotation."""
import pytest
from cryptography.fernet import Fernet

from notifications.sealing import SealingError, reseal, seal, unseal

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_a_sealed_value_is_not_readable_and_opens_to_itself(settings):
    settings.CERTCTL_SECRETS_KEYS = OLD
    token = seal({"url": "https://hooks.slack.com/services/T0/B0/s3cr3t"})
    assert "s3cr3t" not in token
    assert "hooks.slack" not in token
    assert unseal(token) == {"url": "https://hooks.slack.com/services/T0/B0/s3cr3t"}


def test_nothing_secret_needs_no_key(settings):
    settings.CERTCTL_SECRETS_KEYS = ""
    assert seal({}) == ""
    assert unseal("") == {}


def test_without_a_key_a_secret_is_refused_saying_what_to_set(settings):
    settings.CERTCTL_SECRETS_KEYS = ""
    with pytest.raises(SealingError, match="CERTCTL_SECRETS_KEYS is not set"):
        seal({"routing_key": "R0"})


def test_a_malformed_key_is_named_by_position(settings):
    settings.CERTCTL_SECRETS_KEYS = f"{NEW}, not-a-key"
    with pytest.raises(SealingError, match="key 2 is not a Fernet key"):
        seal({"routing_key": "R0"})


def test_rotation_reseals_under_the_first_key_and_the_old_key_can_then_go(settings):
    settings.CERTCTL_SECRETS_KEYS = OLD
    token = seal({"api_key": "k-1"})
    settings.CERTCTL_SECRETS_KEYS = f"{NEW},{OLD}"
    assert unseal(token) == {"api_key": "k-1"}  # both keys open it during the rotation
    rotated = reseal(token)
    settings.CERTCTL_SECRETS_KEYS = NEW
    assert unseal(rotated) == {"api_key": "k-1"}
    with pytest.raises(SealingError, match="no key in CERTCTL_SECRETS_KEYS opens"):
        unseal(token)
