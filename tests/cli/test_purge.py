"""`notifications purge`: what retention does, by hand, saying what it removed."""
from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings

from notifications.engine import upkeep
from notifications.models import NotificationEvent
from tests.cli.conftest import MakeEvent, cli, cli_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_40_and_10_days_ago(make_event: MakeEvent) -> None:
    now = timezone.now()
    for age in (40, 10):
        event = make_event(message=f"sent {age} days ago")
        NotificationEvent.objects.filter(id=event.id).update(status="sent", sent_at=now - timedelta(days=age))
    dead = make_event(message="dead 40 days ago")
    NotificationEvent.objects.filter(id=dead.id).update(
        status="dead", retry_count=5, created_at=now - timedelta(days=40), cause="", cause_kind="transient"
    )
    upkeep.fold_delivery_totals(now=now)


def messages() -> list[str]:
    return sorted(NotificationEvent.objects.values_list("message", flat=True))


def test_purge_older_than_30d_removes_what_it_says(sent_40_and_10_days_ago: None) -> None:
    run = cli("purge", "--older-than", "30d")

    assert run.out.startswith("deleted 1 sent notifications sent before ")
    assert run.out.rstrip().endswith("with 0 attempts and 0 operator actions")
    assert messages() == ["dead 40 days ago", "sent 10 days ago"]


def test_a_dry_run_says_what_would_go_and_keeps_it(sent_40_and_10_days_ago: None) -> None:
    run = cli("purge", "--older-than", "5d", "--dry-run")

    assert run.out.startswith("would delete 2 sent notifications sent before ")
    assert "dry run: nothing was deleted" in run.out
    assert len(messages()) == 3


def test_without_older_than_the_configured_retention_applies(sent_40_and_10_days_ago: None, settings: Settings) -> None:
    settings.CERTCTL_NOTIFICATION_RETENTION = timedelta(days=20)

    assert cli("purge").out.startswith("deleted 1 sent notifications")


def test_without_older_than_and_a_retention_of_0_it_asks_for_one(
    sent_40_and_10_days_ago: None, settings: Settings
) -> None:
    settings.CERTCTL_NOTIFICATION_RETENTION = timedelta(0)

    run = cli_error("purge")

    assert run.returncode == 2
    assert "give --older-than" in run.message
    assert len(messages()) == 3


@pytest.mark.parametrize("value", ["30", "0", "-5d", "thirty days"])
def test_a_bad_duration_is_a_usage_error(db: None, value: str) -> None:
    run = cli_error("purge", "--older-than", value)

    assert run.returncode == 2
    assert len(messages()) == 0
