"""DESIGN §4: the two periodic passes and the housekeeping exist once, with the configured intervals, however often
migrate runs."""
import pydoc
from datetime import timedelta

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from notifications.schedules import ensure_schedules

pytestmark = pytest.mark.django_db

PROCESS = "certctl: process pending notifications"
SWEEP = "certctl: notification retry sweep"
HOUSEKEEPING = "certctl: notification housekeeping"


def schedules():
    return {s.name: (s.func, s.schedule_type, s.minutes, s.repeats) for s in Schedule.objects.all()}


def test_migrate_twice_leaves_each_schedule_once_with_the_configured_interval(settings):
    settings.CERTCTL_SCHEDULER_NOTIFICATION_PROCESS_INTERVAL = timedelta(minutes=1)
    settings.CERTCTL_NOTIFICATION_RETRY_INTERVAL = timedelta(minutes=2)

    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)

    assert schedules() == {
        PROCESS: ("notifications.tasks.process_pending", Schedule.MINUTES, 1, -1),
        SWEEP: ("notifications.tasks.retry_sweep", Schedule.MINUTES, 2, -1),
        HOUSEKEEPING: ("notifications.tasks.housekeeping", Schedule.MINUTES, 1, -1),
    }


@pytest.mark.parametrize(
    ("interval", "minutes"), [(timedelta(minutes=5), 5), (timedelta(seconds=90), 2), (timedelta(seconds=30), 1)]
)
def test_a_changed_interval_updates_the_existing_schedule(settings, interval, minutes):
    ensure_schedules()
    before = Schedule.objects.get(name=SWEEP).pk

    settings.CERTCTL_NOTIFICATION_RETRY_INTERVAL = interval
    ensure_schedules()

    assert Schedule.objects.count() == 3
    sweep = Schedule.objects.get(name=SWEEP)
    assert (sweep.pk, sweep.minutes) == (before, minutes)


def test_a_schedule_stored_under_an_old_task_name_is_pointed_at_the_current_task():
    ensure_schedules()
    Schedule.objects.filter(name=HOUSEKEEPING).update(func="notifications.retention.housekeeping")  # before issue 22

    ensure_schedules()

    assert Schedule.objects.get(name=HOUSEKEEPING).func == "notifications.tasks.housekeeping"
    assert Schedule.objects.count() == 3


def test_every_schedule_names_a_task_that_exists():
    ensure_schedules()
    for schedule in Schedule.objects.all():
        assert callable(pydoc.locate(schedule.func)), schedule.func

