"""The Routes page: routes in order with their criteria, adding and editing (checkboxes, globs, labels, a
multi-select of destinations), deleting after a confirmation, moving up and down, and "Try an alert", which creates
nothing; viewers look and try but do not change."""
import pytest

from notifications.actors import Actor
from notifications.models import ConfigurationAction, Destination, NotificationEvent, Route
from notifications.operations.routes import create_route
from notifications.queries.routing import routes_in_order

pytestmark = pytest.mark.django_db

SETUP = Actor("setup", "api")


@pytest.fixture
def teams(db):
    Destination.objects.ensure_environment()
    for name in ("payments", "edge"):
        Destination.objects.create(name=name, channel="Webhook", config={"url": f"http://127.0.0.1:9/{name}"})


def route(name, destinations, match=None, **options):
    return create_route(name=name, match=match or {}, destinations=destinations, actor=SETUP, **options)


def names():
    return [r.name for r in routes_in_order()]


def test_the_page_lists_routes_in_order_with_their_criteria(operator_client, teams):
    route("payments", ["payments"], {"types": ["Revocation"], "labels": {"team": "payments"}}, continue_matching=True)
    route("edge", ["edge"], {"certificate_ids": ["mc-edge-*"], "severities": ["critical"]})
    route("rest", ["Webhook"], is_default=True)

    body = operator_client.get("/routes/").content.decode()

    assert body.index('data-route="payments"') < body.index('data-route="edge"') < body.index('data-route="rest"')
    assert "type Revocation" in body
    assert "label team=payments" in body
    assert "certificate mc-edge-*" in body
    assert "severity Critical" in body
    assert ">default</span>" in body
    assert "every alert no other route matched" in body
    assert 'aria-label="Move payments up"' not in body
    assert 'aria-label="Move payments down"' in body
    assert 'aria-label="Move edge up"' in body
    assert 'aria-label="Move edge down"' not in body


def test_adding_a_route_from_the_form_audits_the_user(operator_client, teams):
    form = operator_client.get("/routes/new/").content.decode()
    assert 'type="checkbox" name="types" value="Revocation"' in form
    assert '<select name="destinations"' in form
    assert "multiple" in form
    assert '<option value="payments">' in form

    response = operator_client.post("/routes/new/", {
        "name": "payments prod", "types": ["Revocation", "ExpirationWarning"], "severities": ["critical"],
        "certificate_ids": "mc-pay-*\nmc-shop-?", "labels": "team=payments\nenv = prod*",
        "destinations": ["payments", "edge"], "continue_matching": "on", "enabled": "on",
    }, follow=True)

    assert "Added route payments prod" in response.content.decode()
    created = Route.objects.get(name="payments prod")
    assert created.match == {
        "types": ["Revocation", "ExpirationWarning"], "severities": ["critical"],
        "certificate_ids": ["mc-pay-*", "mc-shop-?"], "labels": {"team": "payments", "env": "prod*"},
    }
    assert sorted(created.destinations.values_list("name", flat=True)) == ["edge", "payments"]
    assert created.continue_matching
    assert created.enabled
    assert not created.is_default
    assert ConfigurationAction.objects.filter(target="payments prod", action="create").values_list(
        "actor", "source"
    ).get() == ("operator", "ui")


def test_the_form_shows_each_problem_on_its_field(operator_client, teams):
    route("taken", ["payments"])

    malformed = operator_client.post("/routes/new/", {"name": "x", "labels": "team payments", "destinations": []})
    assert malformed.status_code == 400
    assert "line 1" in malformed.content.decode()
    assert 'id="id_labels_error"' in malformed.content.decode()

    refused = operator_client.post("/routes/new/", {"name": "taken", "destinations": ["payments"], "enabled": "on"})
    assert refused.status_code == 400
    assert 'id="id_name_error"' in refused.content.decode()
    assert "exists already" in refused.content.decode()

    bad_label = operator_client.post("/routes/new/", {"name": "y", "labels": "bad key!=x", "enabled": "on"})
    assert 'id="id_labels_error"' in bad_label.content.decode()
    assert names() == ["taken"]


def test_editing_a_route_keeps_what_the_form_shows(operator_client, teams):
    edited = route("edge", ["edge"], {"certificate_ids": ["mc-edge-*"], "labels": {"team": "edge"}})
    form = operator_client.get(f"/routes/{edited.id}/edit/").content.decode()
    assert "mc-edge-*" in form
    assert "team=edge" in form
    assert '<option value="edge" selected>' in form

    operator_client.post(f"/routes/{edited.id}/edit/", {
        "name": "edge", "certificate_ids": "mc-edge-*", "labels": "team=edge", "destinations": ["edge", "payments"],
        "enabled": "",
    })

    edited.refresh_from_db()
    assert not edited.enabled
    assert sorted(edited.destinations.values_list("name", flat=True)) == ["edge", "payments"]
    assert edited.match == {"certificate_ids": ["mc-edge-*"], "labels": {"team": "edge"}}
    assert operator_client.get("/routes/999999/edit/").status_code == 404


def test_move_up_and_down_and_delete_after_confirmation(operator_client, teams):
    first, second, third = (route(name, ["payments"]) for name in ("first", "second", "third"))

    operator_client.post(f"/routes/{third.id}/up/")
    assert names() == ["first", "third", "second"]
    operator_client.post(f"/routes/{first.id}/down/")
    assert names() == ["third", "first", "second"]
    assert ConfigurationAction.objects.filter(action="reorder").values_list("actor", "source").first() == (
        "operator", "ui"
    )

    assert "Delete route second?" in operator_client.get(f"/routes/{second.id}/delete/").content.decode()
    assert names() == ["third", "first", "second"]
    operator_client.post(f"/routes/{second.id}/delete/")
    assert names() == ["third", "first"]


def test_try_an_alert_shows_where_it_would_go_and_creates_nothing(viewer_client, teams):
    route("payments", ["payments"], {"labels": {"team": "payments"}}, continue_matching=True)
    route("revocations", ["edge"], {"types": ["Revocation"]})

    tried = viewer_client.get("/routes/", {
        "type": "Revocation", "severity": "", "certificate_id": "mc-1", "labels": "team=payments",
    })

    body = tried.content.decode()
    assert tried.status_code == 200
    assert "It would go to" in body
    assert "<strong>payments</strong>" in body
    assert "<strong>edge</strong>" in body
    assert "Matched: payments, revocations" in body
    assert NotificationEvent.objects.count() == 0

    nowhere = viewer_client.get("/routes/", {"type": "RenewalSuccess", "labels": ""})
    assert nowhere.status_code == 422
    assert "no route matched and there is no default route" in nowhere.content.decode()

    malformed = viewer_client.get("/routes/", {"type": "RenewalSuccess", "labels": "no equals sign"})
    assert malformed.status_code == 400
    assert NotificationEvent.objects.count() == 0


def test_a_viewer_gets_403_on_every_change(viewer_client, teams):
    existing = route("r", ["payments"])
    body = viewer_client.get("/routes/").content.decode()
    assert "Add a route" not in body
    assert "Move" not in body
    for path in ("/routes/new/", f"/routes/{existing.id}/edit/", f"/routes/{existing.id}/delete/",
                 f"/routes/{existing.id}/up/", f"/routes/{existing.id}/down/"):
        assert viewer_client.post(path, {"name": "x"}).status_code == 403, path
    assert names() == ["r"]
    assert not ConfigurationAction.objects.filter(source="ui").exists()


def test_route_changes_need_a_csrf_token(client, operator, teams):
    existing = route("r", ["payments"])
    client.handler.enforce_csrf_checks = True
    client.force_login(operator)
    assert client.post(f"/routes/{existing.id}/delete/").status_code == 403
    assert client.post("/routes/new/", {"name": "x", "enabled": "on"}).status_code == 403
    assert names() == ["r"]
