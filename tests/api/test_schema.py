"""OpenAPI 3 schema, the offline docs UI, the browsable API, and a schemathesis run on a live server."""
import json

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core.management import call_command
from hypothesis import HealthCheck, assume
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from notifications.models import labels_problem
from tests.api.conftest import ADMIN_KEY
from tests.deliveries import deliver_now

OPERATIONS = {
    ("/api/v1/notifications", "get"), ("/api/v1/notifications", "post"),
    ("/api/v1/notifications/{id}", "get"), ("/api/v1/notifications/{id}/attempts", "get"),
    ("/api/v1/notifications/{id}/read", "post"), ("/api/v1/notifications/{id}/requeue", "post"),
    ("/api/v1/notifications/requeue", "post"), ("/api/v1/notifications/read", "post"), ("/api/v1/stats/summary", "get"),
    ("/api/v1/channels", "get"), ("/api/v1/channels/{name}/pause", "post"), ("/api/v1/channels/{name}/resume", "post"),
    ("/api/v1/notifications/dead-letter/groups", "get"),
}


@pytest.fixture
def openapi(db):
    response = APIClient().get("/api/v1/schema", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def test_schema_generates_without_warnings_and_validates(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "openapi: 3.0.3" in (tmp_path / "schema.yaml").read_text()


def test_schema_lists_every_endpoint_and_nothing_else(openapi):
    assert {(path, method) for path, ops in openapi["paths"].items() for method in ops} == OPERATIONS


def test_schema_documents_status_codes_errors_and_headers(openapi):
    def codes(path, method):
        return set(openapi["paths"][path][method]["responses"])

    common = {"401", "429", "500", "503"}
    assert codes("/api/v1/notifications", "get") == {"200", "400"} | common
    assert codes("/api/v1/notifications", "post") == {"200", "201", "400", "403", "409", "413", "415", "422"} | common
    assert codes("/api/v1/notifications/{id}", "get") == {"200", "404"} | common
    assert codes("/api/v1/notifications/{id}/read", "post") == {"200", "403", "404", "405"} | common
    assert codes("/api/v1/notifications/{id}/requeue", "post") == {"200", "403", "404", "405", "409"} | common
    assert codes("/api/v1/notifications/requeue", "post") == {"200", "400", "403", "405", "413", "415"} | common
    assert codes("/api/v1/notifications/read", "post") == {"200", "400", "403", "405", "413", "415"} | common
    assert codes("/api/v1/channels/{name}/pause", "post") == {"200", "403", "404", "405"} | common
    assert codes("/api/v1/notifications/dead-letter/groups", "get") == {"200", "400"} | common
    for ops in openapi["paths"].values():
        for operation in ops.values():
            assert operation["security"] == [{"bearerAuth": []}, {"cookieAuth": []}]
            for code, response in operation["responses"].items():
                assert "X-Request-ID" in response["headers"]
                if code.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    retry_after = openapi["paths"]["/api/v1/stats/summary"]["get"]["responses"]["429"]["headers"]
    assert "Retry-After" in retry_after
    assert openapi["components"]["schemas"]["Error"]["required"] == ["error", "message", "request_id"]
    assert openapi["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_schema_documents_filters_and_enums(openapi):
    parameters = {p["name"]: p["schema"] for p in openapi["paths"]["/api/v1/notifications"]["get"]["parameters"]}
    filters = {
        "status", "delivery_status", "channel", "destination", "label", "type", "certificate_id", "read",
        "created_after", "created_before",
        "failed_after", "failed_before", "error", "cause", "cause_kind", "q",
    }
    assert set(parameters) == {"page", "per_page", "format", *filters}
    assert sorted(parameters["cause_kind"]["enum"]) == ["", "permanent", "transient"]
    listing = openapi["paths"]["/api/v1/notifications"]["get"]["parameters"]
    assert "ISO 8601" in next(p["description"] for p in listing if p["name"] == "failed_after")
    assert "csv" in parameters["format"]["enum"]
    assert sorted(parameters["status"]["enum"]) == ["", "dead", "failed", "pending", "read", "sent"]
    assert sorted(parameters["delivery_status"]["enum"]) == ["", "dead", "failed", "pending", "sent"]
    assert sorted(parameters["read"]["enum"]) == ["", "false", "true"]
    assert parameters["page"]["minimum"] == 1
    schemas = openapi["components"]["schemas"]
    assert schemas["NotificationChannel"]["enum"] == ["Email", "Webhook", "Slack", "Teams", "PagerDuty", "OpsGenie"]
    assert set(schemas["NotificationEvent"]["properties"]) == {
        "id", "type", "certificate_id", "channel", "recipient", "message", "severity", "status", "delivery_status",
        "retry_count", "next_retry_at", "last_error", "sent_at", "created_at", "updated_at", "read_at", "dedup_key",
        "destination", "labels",
    }
    # status as certctl shows it (read once acknowledged); delivery_status always the delivery state.
    event = schemas["NotificationEvent"]["properties"]
    assert event["status"]["allOf"] == [{"$ref": "#/components/schemas/NotificationStatus"}]
    assert "read" in event["status"]["description"]
    assert schemas["NotificationStatus"]["enum"] == ["pending", "sent", "failed", "dead", "read"]
    assert event["delivery_status"]["allOf"] == [{"$ref": "#/components/schemas/DeliveryStatus"}]
    assert schemas["DeliveryStatus"]["enum"] == ["pending", "sent", "failed", "dead"]
    group = schemas["FailureGroup"]
    assert sorted(group["required"]) == ["channel", "count", "error", "first_at", "kind", "last_at", "sample_id"]
    assert group["properties"]["kind"]["allOf"] == [{"$ref": "#/components/schemas/CauseKind"}]
    assert schemas["CauseKind"]["enum"] == ["permanent", "transient"]
    # One id rule, as operations.events.validate_event_input keeps it.
    assert schemas["NotificationCreate"]["properties"]["id"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._~:-]{0,63}$"
    descriptions = {p["name"]: p["description"] for p in openapi["paths"]["/api/v1/notifications"]["get"]["parameters"]}
    assert '"read" = events an operator acknowledged' in descriptions["status"]
    assert "not yet read" in descriptions["status"]
    assert "read or not" in descriptions["delivery_status"]
    for path in ("/api/v1/notifications/requeue", "/api/v1/notifications/read"):
        body = openapi["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        by_ids, by_filter = body["schema"]["oneOf"]
        assert (by_ids["required"], by_ids["properties"]["ids"]["maxItems"]) == (["ids"], 10_000)
        assert set(by_filter["properties"]) == {*filters, "dry_run"}
        assert by_ids["properties"]["dry_run"]["type"] == "boolean"
    groups = openapi["paths"]["/api/v1/notifications/dead-letter/groups"]["get"]
    assert filters <= {p["name"] for p in groups["parameters"]}
    group = schemas["FailureGroup"]
    assert set(group["properties"]) == {"channel", "kind", "error", "count", "first_at", "last_at", "sample_id"}
    read_result = schemas["BulkReadResult"]
    assert (read_result["required"], set(read_result["properties"])) == (
        ["marked_read", "skipped"], {"marked_read", "skipped"},
    )


@pytest.mark.django_db
def test_docs_ui_is_served_without_a_cdn():
    response = APIClient().get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    assert "https://" not in html
    # No inline script: Swagger UI's start-up script is a file of its own (Content-Security-Policy).
    assert "<script>" not in html
    script = APIClient().get("/api/v1/docs?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/v1/schema" in script.content.decode()
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert finders.find(f"drf_spectacular_sidecar/swagger-ui-dist/{asset}")


@pytest.mark.django_db
def test_browsable_api_renders_for_a_logged_in_user(operator_user, dead_event):
    client = APIClient()
    client.force_login(operator_user)
    response = client.get("/api/v1/notifications", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert dead_event.id in html
    assert "Notification List" in html
    assert "csrfToken" in html
    detail = client.get(f"/api/v1/notifications/{dead_event.id}/requeue", headers={"Accept": "text/html"})
    assert detail.status_code == 405  # GET of an action: the page shows the POST form with the 405
    assert "POST" in detail.content.decode()


# --- schemathesis on a live server -----------------------------------------------------------------


def generated_schema():
    """The document /api/v1/schema serves, built in-process so that schemathesis can parametrize at collection."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


api_schema = schemathesis.openapi.from_dict(generated_schema())
# Well-formed input the configuration cannot take (an unknown destination name, an alert no route takes) is 422.
api_schema.config.checks.positive_data_acceptance.expected_statuses.append("422")


def test_the_served_schema_is_the_one_schemathesis_checks(openapi):
    assert openapi == generated_schema()


@pytest.fixture
def live_api(live_server, transactional_db, settings, make_event):
    settings.CERTCTL_RATE_LIMIT_RPS = 0  # the run is one fast client; throttling has its own tests
    settings.CERTCTL_AUTH_FAILURES_PER_MINUTE = 0
    for channel in ("Webhook", "Slack"):
        deliver_now(make_event(channel=channel).id)
    make_event(certificate_id="mc-1")
    return live_server.url


@api_schema.parametrize()
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, live_api):
    # OpenAPI 3.0 cannot state the label key rule but in a description, so generated bodies break it; such a body
    # is not valid input.
    labels = case.body.get("labels") if isinstance(case.body, dict) else None
    assume(not isinstance(labels, dict) or labels_problem(labels) is None or "keys are" not in labels_problem(labels))
    case.call_and_validate(base_url=live_api, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
