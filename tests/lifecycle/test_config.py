"""Durations in Go syntax, as certctl reads them; a bad value stops start-up naming the variable and the value."""
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from certctl.config import env_duration

NAME = "CERTCTL_NOTIFICATION_RETRY_INTERVAL"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("2m", timedelta(minutes=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        (" 1.5h ", timedelta(minutes=90)),
    ],
)
def test_go_durations_are_accepted(monkeypatch, value, expected):
    monkeypatch.setenv(NAME, value)

    assert env_duration(NAME, "2m") == expected


def test_an_unset_variable_gives_the_default(monkeypatch):
    monkeypatch.delenv(NAME, raising=False)

    assert env_duration(NAME, "2m") == timedelta(minutes=2)


@pytest.mark.parametrize("value", ["abc", "-1m", "5", "", "2 m", "1d"])
def test_invalid_durations_are_refused_naming_the_variable_and_value(monkeypatch, value):
    monkeypatch.setenv(NAME, value)

    with pytest.raises(ImproperlyConfigured) as refused:
        env_duration(NAME, "2m")

    assert f"{NAME}={value!r} is not valid" in str(refused.value)


@pytest.mark.parametrize(
    ("value", "expected"), [("90d", timedelta(days=90)), ("1d12h", timedelta(hours=36)), ("0", timedelta(0))]
)
def test_a_retention_period_may_be_given_in_days(monkeypatch, value, expected):
    monkeypatch.setenv("CERTCTL_NOTIFICATION_RETENTION", value)

    assert env_duration("CERTCTL_NOTIFICATION_RETENTION", "90d", days=True) == expected


def test_days_are_refused_where_certctl_reads_a_go_duration(monkeypatch):
    monkeypatch.setenv(NAME, "1d")

    with pytest.raises(ImproperlyConfigured) as refused:
        env_duration(NAME, "2m")

    assert "or days" not in str(refused.value)
