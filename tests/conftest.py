import fcntl
import hashlib
import json
import os
import socket
import tempfile

import pytest

from notifications import notifiers
from notifications.operations.events import create_event
from notifications.queries.routing import forget_route_table
from tests.receivers import Receiver

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_runtest_setup(item):
    """PostgreSQL-only tests skip elsewhere with a reason; in CI such a skip would hide a failure, so it fails."""
    if "postgres" not in item.keywords:
        return
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    if IN_CI:
        pytest.fail("CI=true but DATABASE_URL is not PostgreSQL: this test must run on PostgreSQL in CI")
    pytest.skip("needs PostgreSQL (row locks, SKIP LOCKED): set DATABASE_URL=postgres://… to run it")


def _mutation_run_tag() -> str:
    """Names this copy of the tree (mutmut runs in `mutants/` of each checkout), so two checkouts' runs on one
    PostgreSQL server keep their databases apart."""
    return hashlib.sha1(os.getcwd().encode()).hexdigest()[:8]


def _mutation_slot() -> int | None:
    """Under mutmut, the number of a free slot, held (by an open, locked file) until this process exits.

    mutmut forks one child per mutant, several at a time; on PostgreSQL each running child needs a test database
    of its own, and reusing one per slot spares a migration run per mutant (docs/testing.md).
    """
    if "MUTANT_UNDER_TEST" not in os.environ:
        return None
    for slot in range(64):
        lock_path = os.path.join(tempfile.gettempdir(), f"certctl-mutmut-{_mutation_run_tag()}-{slot}.lock")
        # Left open on purpose: the lock lasts as long as the file, which a `with` block would close at once.
        handle = open(lock_path, "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held_slot_files.append(handle)
        return slot
    raise RuntimeError("more than 64 concurrent mutmut children")


_held_slot_files: list = []


# Under mutmut a test still running after this long hangs on its mutant (the slowest takes about 4 s alone).
# mutmut's own limit is 15 times all of a mutant's tests together, up to half an hour a mutant for the engine.
MUTANT_TEST_TIMEOUT_S = 15


def pytest_collection_modifyitems(items):
    """Under mutmut, run a mutant's tests fastest first, each for at most MUTANT_TEST_TIMEOUT_S: mutmut stops at the
    first failure (`-x`) but passes the tests in no particular order, so a mutant that a 10 ms test kills could
    otherwise wait for a 5 s one."""
    if "MUTANT_UNDER_TEST" not in os.environ:
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(MUTANT_TEST_TIMEOUT_S))
    if os.path.exists("mutmut-stats.json"):
        with open("mutmut-stats.json") as stats:
            duration_by_test = json.load(stats)["duration_by_test"]
        items.sort(key=lambda item: duration_by_test.get(item.nodeid, 0.0))


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    slot = _mutation_slot()
    if slot is None:
        return
    from django.conf import settings

    test_settings = settings.DATABASES["default"].setdefault("TEST", {})
    test_settings["NAME"] = f"test_certctl_mutmut_{_mutation_run_tag()}_{slot}"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Under mutmut the slot's database is reused (--reuse-db): empty it first, since a child killed mid-test
    (a mutant that hangs) may have left rows behind that would fail the next mutant's tests for it."""
    if "MUTANT_UNDER_TEST" in os.environ:
        from django.core.management import call_command

        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def closed_port():
    """A local port nobody listens on, for connection-refused cases."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _no_channels_configured(settings):
    """Each test configures the channels it uses; nothing leaks in from the developer's environment."""
    for name in (
        "CERTCTL_SMTP_HOST", "CERTCTL_SMTP_FROM_ADDRESS", "CERTCTL_SMTP_USERNAME", "CERTCTL_SMTP_PASSWORD",
        "CERTCTL_SMTP_RECIPIENTS",
        "CERTCTL_WEBHOOK_URL", "CERTCTL_WEBHOOK_SECRET", "CERTCTL_SLACK_WEBHOOK_URL", "CERTCTL_TEAMS_WEBHOOK_URL",
        "CERTCTL_PAGERDUTY_ROUTING_KEY", "CERTCTL_OPSGENIE_API_KEY", "CERTCTL_API_KEYS_NAMED", "CERTCTL_METRICS_TOKEN",
    ):
        setattr(settings, name, "")


@pytest.fixture(autouse=True)
def _stored_secrets_read_afresh(monkeypatch):
    """Each test's database starts over, and with it ConfigVersion: a number read in an earlier test says nothing."""
    monkeypatch.setattr(notifiers, "_stored_secrets", notifiers._StoredSecrets(version=-1))


@pytest.fixture(autouse=True)
def _fresh_route_table():
    """The routing cache is kept per configuration version; a rolled-back test database reuses the numbers."""
    forget_route_table()
    yield
    forget_route_table()


@pytest.fixture
def webhook(settings, receiver):
    """The Webhook channel pointed at a local receiver."""
    settings.CERTCTL_WEBHOOK_URL = receiver.url + "/hook"
    return receiver


@pytest.fixture
def make_event(db):
    def make(**overrides):
        fields = dict(
            type="ExpirationWarning", channel="Webhook", recipient="ops@example.com",
            message="api.example.com expires in 7 days",
        )
        fields.update(overrides)
        event, _ = create_event(**fields)
        return event

    return make
