"""Every POST form the UI renders carries a CSRF token: without one its button only earns the operator a 403."""
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from django.http import HttpResponse

from notifications.models import Channel, NotificationEvent

pytestmark = pytest.mark.django_db

TOKEN_FIELD = "csrfmiddlewaretoken"


@dataclass
class PostForm:
    action: str
    token: str = ""


@dataclass
class PostForms(HTMLParser):
    """Collects each <form method="post"> of a page with the CSRF token inside it (empty if none)."""

    forms: list[PostForm] = field(default_factory=list)
    current: PostForm | None = None

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and (attributes.get("method") or "get").lower() == "post":
            self.current = PostForm(action=attributes.get("action") or "")
            self.forms.append(self.current)
        elif (
            tag == "input"
            and self.current is not None
            and attributes.get("name") == TOKEN_FIELD
            and (attributes.get("type") or "").lower() == "hidden"
        ):
            self.current.token = attributes.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.current = None


def post_forms(response: HttpResponse) -> list[PostForm]:
    assert response.status_code == 200, response.content.decode()[:500]
    parser = PostForms()
    parser.feed(response.content.decode())
    parser.close()
    return parser.forms


@pytest.fixture
def events(event_in: Callable[..., NotificationEvent]) -> dict[str, NotificationEvent]:
    return {status: event_in(status) for status in ("dead", "failed", "sent", "pending")}


def pages(events: dict[str, NotificationEvent]) -> dict[str, set[str]]:
    """path -> the POST forms (by action) that page must show an operator; "" is a form that posts to its own URL."""
    dead, failed, sent, pending = (events[status].id for status in ("dead", "failed", "sent", "pending"))
    row_forms = {f"/notifications/{e}/requeue/" for e in (dead, failed)}
    row_forms |= {f"/notifications/{e}/read/" for e in (dead, failed, sent, pending)}

    def on_event(event_id: str) -> set[str]:
        return {f"/notifications/{event_id}/requeue/", f"/notifications/{event_id}/read/"}

    return {
        "/": {"/logout/"} | {f"/destinations/{channel}/pause/" for channel in Channel.values},
        "/notifications/": {"/logout/"} | row_forms,
        "/notifications/?status=failed": {"/logout/", *on_event(failed)},
        "/notifications/?tab=dead": {"/logout/", "/notifications/requeue-selected/", *on_event(dead)},
        # What the 30-second auto-refresh swaps into the list: its forms must work too.
        "/notifications/?tab=dead&fragment=1": {"/notifications/requeue-selected/", *on_event(dead)},
        "/notifications/?fragment=1": row_forms,
        f"/notifications/{dead}/": {"/logout/", *on_event(dead)},
        f"/notifications/{failed}/": {"/logout/", *on_event(failed)},
        f"/notifications/{sent}/": {"/logout/", f"/notifications/{sent}/read/"},
        "/notifications/requeue-matching/?channel=Webhook": {"/logout/", ""},
        "/destinations/": {"/logout/"} | {
            f"/destinations/{channel}/{action}/" for channel in Channel.values for action in ("test", "pause")
        },
        "/destinations/new/?channel=Webhook": {"/logout/", ""},
        "/routes/": {"/logout/"},
        "/routes/new/": {"/logout/", ""},
    }


def test_every_post_form_on_every_page_carries_a_csrf_token(operator_client, events):
    for path, expected in pages(events).items():
        forms = post_forms(operator_client.get(path))

        assert {form.action for form in forms} == expected, path
        assert [form.action for form in forms if not form.token] == [], f"POST forms without a CSRF token on {path}"


def test_the_login_form_carries_a_csrf_token(client):
    [form] = post_forms(client.get("/login/"))

    assert form.action == "/login/"
    assert form.token
