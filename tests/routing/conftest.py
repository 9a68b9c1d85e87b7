import pytest

from notifications.actors import Actor
from notifications.models import Destination
from notifications.operations.routes import create_route

OPERATOR = Actor("alice", "api")


@pytest.fixture
def destinations(db):
    """Stored Webhook destinations a, b and c (with a Slack one, s), beside the environment ones."""
    Destination.objects.ensure_environment()
    for name in ("team-a", "team-b", "team-c"):
        Destination.objects.create(name=name, channel="Webhook", config={"url": f"http://127.0.0.1:9/{name}"})
    Destination.objects.create(name="slack-edge", channel="Slack")
    return Destination.objects.live()


@pytest.fixture
def route(destinations):
    def make(name, destinations=("team-a",), match=None, **options):
        return create_route(name=name, match=match or {}, destinations=list(destinations), actor=OPERATOR, **options)

    return make
