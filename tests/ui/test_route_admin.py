"""The Django admin for routes: ordered list, a checked match, saves and deletes through the operations (audited)."""
import json

import pytest

from notifications.models import ConfigurationAction, ConfigVersion, Destination, Route

pytestmark = pytest.mark.django_db

ROUTES = "/admin/notifications/route/"


@pytest.fixture
def destinations():
    Destination.objects.ensure_environment()
    Destination.objects.create(name="payments-hook", channel="Webhook", config={"url": "http://127.0.0.1:9/p"})


def form(**fields):
    data = {
        "name": "payments", "match": json.dumps({"labels": {"team": "payments"}}), "destinations": ["payments-hook"],
        "enabled": "on", "position": "",
    }
    data.update(fields)
    return data


def test_add_change_and_delete_go_through_the_operations(admin_client, destinations):
    version = ConfigVersion.objects.current()
    response = admin_client.post(f"{ROUTES}add/", form())
    assert response.status_code == 302, response.content.decode()[:2000]
    route = Route.objects.get()
    assert (route.match, route.position, route.enabled) == ({"labels": {"team": "payments"}}, 0, True)
    assert list(route.destinations.values_list("name", flat=True)) == ["payments-hook"]
    assert ConfigVersion.objects.current() > version

    admin_client.post(f"{ROUTES}{route.id}/change/", form(name="payments-prod", destinations=["Webhook"], position="0"))
    route.refresh_from_db()
    assert route.name == "payments-prod"
    assert list(route.destinations.values_list("name", flat=True)) == ["Webhook"]

    admin_client.post(f"{ROUTES}{route.id}/delete/", {"post": "yes"})
    assert not Route.objects.exists()
    assert list(ConfigurationAction.objects.order_by("id").values_list("action", "target", "actor", "source")) == [
        ("create", "payments", "admin", "admin"),
        ("update", "payments-prod", "admin", "admin"),
        ("delete", "payments-prod", "admin", "admin"),
    ]


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"match": json.dumps({"types": ["Expiry"]})}, "unknown type &#x27;Expiry&#x27;"),
        ({"match": "{not json"}, "Enter a valid JSON"),
        ({"is_default": "on"}, "leave it empty"),
    ],
)
def test_a_bad_match_is_shown_on_the_form(admin_client, destinations, fields, text):
    response = admin_client.post(f"{ROUTES}add/", form(**fields))
    assert response.status_code == 200
    assert text in response.content.decode()
    assert not Route.objects.exists()


def test_the_list_is_in_evaluation_order_with_destinations(admin_client, destinations):
    admin_client.post(f"{ROUTES}add/", form(name="second"), follow=True)  # follow: the message names the route
    admin_client.post(
        f"{ROUTES}add/", form(name="first", position="0", destinations=["payments-hook", "Slack"]), follow=True
    )
    body = admin_client.get(ROUTES).content.decode()
    assert body.index(">first</a>") < body.index(">second</a>")
    assert "Slack, payments-hook" in body
