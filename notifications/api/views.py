"""REST endpoints under /api/v1 (DESIGN §5). Thin: reads go through notifications.queries, changes through
notifications.operations."""
from typing import Any

from django.http import Http404, HttpResponseBase
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from notifications.api.auth import actor_for
from notifications.api.pagination import EnvelopePagination
from notifications.api.parsers import LimitedJSONParser
from notifications.api.schema import CHANNEL_NAME, DESTINATION_NAME, EVENT_ID, TIME_PARAMETERS, bulk_request, errors
from notifications.api.serializers import (
    AlertCreateSerializer,
    BulkSelectionSerializer,
    DestinationCreateSerializer,
    DestinationUpdateSerializer,
    NotificationCreateSerializer,
    RouteOrderSerializer,
    RouteWriteSerializer,
)
from notifications.errors import EventIdTaken
from notifications.filtersets import FILTER_NAMES, NotificationFilterSet
from notifications.models import NotificationEvent, Route
from notifications.operations.alerts import create_alert, route_alert
from notifications.operations.channels import pause_channel, resume_channel
from notifications.operations.destinations import (
    create_destination,
    delete_destination,
    send_test,
    update_destination,
)
from notifications.operations.events import create_event, mark_read, requeue_event
from notifications.operations.pausing import pause_destination, resume_destination
from notifications.operations.routes import create_route, delete_route, reorder_routes, update_route
from notifications.queries.channels import channel_states
from notifications.queries.destinations import destination_list, destination_row, get_destination
from notifications.queries.events import get_event, list_page
from notifications.queries.export import CsvExport, csv_response
from notifications.queries.groups import failure_groups
from notifications.queries.routing import get_route, routes_in_order
from notifications.queries.summary import stats_summary
from notifications.serializers import (
    BULK_MARK_READ,
    BULK_REQUEUE,
    AlertResultSerializer,
    BulkReadResultSerializer,
    BulkRequeueResultSerializer,
    ChannelListSerializer,
    ChannelSerializer,
    DestinationListSerializer,
    DestinationSerializer,
    EventPageSerializer,
    FailureGroupListSerializer,
    MarkedReadSerializer,
    NotificationAttemptSerializer,
    NotificationEventSerializer,
    ReadPreviewSerializer,
    RequeuedSerializer,
    RequeuePreviewSerializer,
    RouteListSerializer,
    RouteSerializer,
    RoutingSerializer,
    StatsSummarySerializer,
    TestOutcomeSerializer,
)


def _filters(request: Request) -> dict[str, str]:
    """The list filters among the query parameters."""
    return {name: request.query_params[name] for name in FILTER_NAMES if name in request.query_params}


class CSVRenderer(BaseRenderer):
    """Lets `?format=csv` reach the list, which streams the CSV itself (notifications.queries.export)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        raise NotImplementedError("the list answers CSV with a streaming response")


class IdTaken(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


@extend_schema_view(
    list=extend_schema(
        summary="List notifications",
        description="Newest first (created_at, then id), so pages are stable. `total` counts every match. "
        "With `format=csv`, every matching event (not one page) is streamed as CSV with a header row; cells that a "
        "spreadsheet would take for a formula (starting with = + - @) are prefixed with an apostrophe. The "
        "`X-Total-Count` header, sent before the first row, says how many rows follow the header: a client that "
        "received fewer (a connection cut mid-way) has an incomplete file. On PostgreSQL the count and the rows "
        "are read in one snapshot, so events created during the download change neither.",
        parameters=[
            *TIME_PARAMETERS,
            OpenApiParameter(
                "format", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=["json", "csv"],
                description="csv: all matching events as a CSV download (page and per_page are ignored).",
            ),
            OpenApiParameter(
                "X-Total-Count", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[200],
                description="With format=csv: how many rows follow the CSV header.",
            ),
        ],
        responses={
            (200, "application/json"): NotificationEventSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="With format=csv."),
            **errors(400),
        },
    ),
    create=extend_schema(
        summary="Create a notification",
        description="Creates a pending notification and hands it to the workers. With a `dedup_key` that is already "
        "known, nothing is created and the existing notification is returned with 200.",
        request=NotificationCreateSerializer,
        responses={
            201: OpenApiResponse(NotificationEventSerializer, description="Created; `Location` points at it."),
            200: OpenApiResponse(
                NotificationEventSerializer, description="An event with this dedup_key already exists; here it is."
            ),
            **errors(
                400, 403, 409, 413, 415, 422, d409="The client-chosen `id` belongs to another notification.",
                d422="The destination is unknown, removed or disabled, or of another channel than the one given.",
            ),
        },
        examples=[
            OpenApiExample(
                "Expiry warning by webhook",
                request_only=True,
                value={
                    "type": "ExpirationWarning", "channel": "Webhook", "recipient": "ops@example.com",
                    "message": "api.example.com expires in 7 days", "certificate_id": "mc-api-prod",
                    "severity": "warning", "dedup_key": "mc-api-prod-expiry-7d",
                },
            )
        ],
    ),
    retrieve=extend_schema(
        summary="Get one notification", parameters=[EVENT_ID],
        responses={200: NotificationEventSerializer, **errors(404)},
    ),
    attempts=extend_schema(
        summary="Delivery attempts of one notification",
        description="Every attempt ever made, oldest first; history survives requeues.",
        parameters=[EVENT_ID],
        responses={200: NotificationAttemptSerializer(many=True), **errors(400, 404)},
    ),
    read=extend_schema(
        summary="Mark a notification read (dismiss a dead one)",
        description="Records the operator's acknowledgement: the event's `status` becomes \"read\" and a dead event "
        "leaves the dead-letter queue's unacknowledged count. Delivery is untouched: unlike certctl, a pending or "
        "failed event is still delivered (see `delivery_status`). Marking twice keeps the first time. "
        "Read-only keys may do this.",
        parameters=[EVENT_ID], request=None,
        responses={200: MarkedReadSerializer, **errors(403, 404, 405)},
    ),
    requeue=extend_schema(
        summary="Requeue a failed or dead notification",
        description="Moves it back to pending with retry_count 0 and delivers it promptly; its attempt history stays. "
        "A requeued event is unread again (read_at is cleared). Needs an admin key.",
        parameters=[EVENT_ID], request=None,
        responses={200: RequeuedSerializer, **errors(403, 404, 405, 409)},
    ),
    bulk_requeue=extend_schema(
        summary="Requeue many notifications",
        operation_id="notifications_bulk_requeue",
        description="By `ids` (at most 10 000) or by any of the list's filters, with the list's meaning "
        "(`status=dead` selects the unread dead ones; `failed_after` those whose last attempt failed since then). "
        "Only failed and dead notifications move; the rest are counted as skipped. With `dry_run: true` nothing "
        "changes and the answer is `{would_requeue, skipped, sample}`. Needs an admin key.",
        request={"application/json": bulk_request("requeue")},
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    "BulkRequeueAnswer",
                    [BulkRequeueResultSerializer, RequeuePreviewSerializer],
                    resource_type_field_name=None,
                ),
                description="`{requeued, skipped}`, or with dry_run `{would_requeue, skipped, sample}`.",
            ),
            **errors(400, 403, 405, 413, 415),
        },
        examples=[
            OpenApiExample("By id", request_only=True, value={"ids": ["notif-01JD0Z8F3QG5V8X4T6Y2R1M9KC"]}),
            OpenApiExample("Every dead Slack alert", request_only=True, value={"status": "dead", "channel": "Slack"}),
            OpenApiExample(
                "Recover everything that died since a time (dry run)", request_only=True,
                value={"status": "dead", "failed_after": "2026-11-29T08:00:00Z", "dry_run": True},
            ),
        ],
    ),
    bulk_read=extend_schema(
        summary="Mark many notifications read (dismiss dead ones)",
        operation_id="notifications_bulk_read",
        description="By `ids` (at most 10 000) or by filter, like bulk requeue. Unread events become read; dead ones "
        "are thereby dismissed from the dead-letter queue. Delivery is untouched. Unknown ids and events already "
        "read are counted as skipped. With `dry_run: true` nothing changes and the answer is "
        "`{would_mark_read, skipped, sample}`. Read-only keys may do this.",
        request={"application/json": bulk_request("mark read")},
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    "BulkReadAnswer", [BulkReadResultSerializer, ReadPreviewSerializer], resource_type_field_name=None
                ),
                description="`{marked_read, skipped}`, or with dry_run `{would_mark_read, skipped, sample}`.",
            ),
            **errors(400, 403, 405, 413, 415),
        },
        examples=[
            OpenApiExample("By id", request_only=True, value={"ids": ["notif-01JD0Z8F3QG5V8X4T6Y2R1M9KC"]}),
            OpenApiExample(
                "Dismiss every dead Slack alert", request_only=True, value={"status": "dead", "channel": "Slack"}
            ),
        ],
    ),
)
class NotificationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[NotificationEvent]):
    queryset = NotificationEvent.objects.order_by("-created_at", "-id")
    serializer_class = NotificationEventSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = NotificationFilterSet
    pagination_class = EnvelopePagination
    parser_classes = [LimitedJSONParser]
    lookup_field = "id"
    lookup_value_regex = r"[^/\x00]+"

    # The create and the bulk actions read request bodies, not events: DRF's stubs allow one model per view.
    def get_serializer_class(  # type: ignore[override]
        self,
    ) -> type[NotificationEventSerializer | NotificationCreateSerializer | BulkSelectionSerializer]:
        if self.action == "create":
            return NotificationCreateSerializer
        if self.action in ("bulk_requeue", "bulk_read"):
            return BulkSelectionSerializer
        return NotificationEventSerializer

    def create(self, request: Request) -> Response:
        serializer = NotificationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            event, created = create_event(**serializer.service_arguments())
        except EventIdTaken as exc:
            raise IdTaken(exc.errors["id"]) from None
        body = NotificationEventSerializer(event).data
        if not created:
            return Response(body, status=status.HTTP_200_OK)
        location = reverse("api:notification-detail", kwargs={"id": event.id}, request=request)
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})

    def get_renderers(self) -> list[BaseRenderer]:
        if self.action == "list":
            return [*super().get_renderers(), CSVRenderer()]
        return super().get_renderers()

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            if self.action is None:  # a method this path does not allow: its 405 comes next
                return super().perform_content_negotiation(request, force=True)
            # DRF answers an unknown ?format= with 404; it is a bad query value.
            formats = ", ".join(sorted({r.format for r in self.get_renderers()}))
            wanted = request.query_params.get("format", "")[:50]
            raise ValidationError({"format": f"unknown format {wanted!r}; expected one of {formats}"}) from None

    # DRF finalizes any HttpResponseBase (the CSV streams); its stubs say Response.
    def finalize_response(  # type: ignore[override]
        self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        # An error answering a CSV request is still the API's JSON error body.
        if isinstance(response, Response) and response.status_code >= 400 and isinstance(
            getattr(request, "accepted_renderer", None), CSVRenderer
        ):
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[arg-type]

    # A CSV list streams (a StreamingHttpResponse, not a DRF Response).
    def list(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        if isinstance(request.accepted_renderer, CSVRenderer):
            return csv_response(CsvExport(_filters(request)))
        assert isinstance(self.paginator, EnvelopePagination)
        page, per_page = self.paginator.page_request(request)
        return Response(EventPageSerializer(list_page(_filters(request), page, per_page)).data)

    def retrieve(self, request: Request, id: str) -> Response:
        return Response(NotificationEventSerializer(get_event(id)).data)

    @action(detail=True, methods=["get"], filter_backends=[])
    def attempts(self, request: Request, id: str) -> Response:
        event = get_event(id)
        assert isinstance(self.paginator, EnvelopePagination)
        page = self.paginator.paginate_queryset(event.attempts.order_by("number"), request, view=self)
        return self.get_paginated_response(NotificationAttemptSerializer(page, many=True).data)

    @action(detail=True, methods=["post"])
    def read(self, request: Request, id: str) -> Response:
        mark_read(id, actor_for(request))
        return Response({"status": "marked_as_read"})

    @action(detail=True, methods=["post"])
    def requeue(self, request: Request, id: str) -> Response:
        requeue_event(id, actor_for(request))
        return Response({"status": "requeued"})

    @action(
        detail=False, methods=["post"], url_path="requeue", url_name="bulk-requeue",
        filter_backends=[], pagination_class=None,
    )
    def bulk_requeue(self, request: Request) -> Response:
        serializer = BulkSelectionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(BULK_REQUEUE.run(actor_for(request), **serializer.validated_data))

    @action(
        detail=False, methods=["post"], url_path="read", url_name="bulk-read",
        filter_backends=[], pagination_class=None,
    )
    def bulk_read(self, request: Request) -> Response:
        serializer = BulkSelectionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(BULK_MARK_READ.run(actor_for(request), **serializer.validated_data))

    @extend_schema(
        summary="Dead letter grouped by cause",
        description="The dead-letter queue (dead events not dismissed; with a `status`, `delivery_status` or `read` "
        "filter, the dead events that filter selects) grouped by channel, kind and cause: the last error normalised "
        "once, when the event went dead, so that ids, numbers, hex strings, UUIDs and timestamps do not split a group "
        "(a three-digit HTTP status does). Largest group first, then the one that failed last. Accepts the list's "
        "filters. To requeue or dismiss one group, give `status=dead` with its `channel`, `kind` as `cause_kind` and "
        "`error` as `cause` to `POST /notifications/requeue` or `/notifications/read`.",
        filters=True,
        parameters=TIME_PARAMETERS,
        responses={200: FailureGroupListSerializer, **errors(400)},
    )
    @action(
        detail=False, methods=["get"], url_path="dead-letter/groups", url_name="dead-letter-groups",
        pagination_class=None,
    )
    def dead_letter_groups(self, request: Request) -> Response:
        groups = failure_groups(_filters(request))
        return Response(FailureGroupListSerializer({"data": groups, "total": len(groups)}).data)


class StatsSummaryView(APIView):
    @extend_schema(
        summary="Dashboard summary",
        description="Counts per delivery status (certctl's names), the dead events no operator has dismissed yet "
        "(`notifications_dead_unacknowledged`) and the oldest retry that is due but not yet taken.",
        responses={200: StatsSummarySerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(StatsSummarySerializer(stats_summary()).data)


class ChannelListView(APIView):
    @extend_schema(
        summary="Channels and their state",
        description="Each channel with its circuit breaker or pause state (closed, open, paused).",
        responses={200: ChannelListSerializer},
    )
    def get(self, request: Request) -> Response:
        channels = channel_states()
        return Response(ChannelListSerializer({"data": channels, "total": len(channels)}).data)


class ChannelPauseView(APIView):
    pause = True

    @extend_schema(
        summary="Pause or resume a channel",
        description="Pause holds the channel's events (a maintenance window; they spend no retries) until resumed; "
        "resume lets them flow at once. Pausing a paused channel, or resuming one that is not paused, changes "
        "nothing. Needs an admin key. Answers the channel's state.",
        parameters=[CHANNEL_NAME], request=None,
        responses={200: ChannelSerializer, **errors(403, 404, 405, d404="No channel of this name.")},
    )
    def post(self, request: Request, name: str) -> Response:
        change = pause_channel if self.pause else resume_channel
        change(name, actor_for(request))
        state = next(channel for channel in channel_states() if channel["name"].lower() == name.lower())
        return Response(ChannelSerializer(state).data)


_WEBHOOK_DESTINATION = {
    "name": "payments-hook", "channel": "Webhook", "description": "payments team's receiver",
    "config": {"url": "https://hooks.payments.example.com/certctl", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
}


class DestinationListView(APIView):
    @extend_schema(
        summary="List destinations",
        operation_id="destinations_list",
        description="Every destination, by name: the channels' environment destinations (named after the channel, "
        "read-only) and the stored ones. Secret fields are never answered: `secrets_set` names those that are set.",
        responses={200: DestinationListSerializer},
    )
    def get(self, request: Request) -> Response:
        rows = destination_list()
        return Response(DestinationListSerializer({"data": rows, "total": len(rows)}).data)

    @extend_schema(
        summary="Create a destination",
        description="A named destination of a channel, its `config` validated by the channel (unknown fields, "
        "required ones, kinds: 422 naming config.<field>). Secret fields are encrypted at rest under "
        "CERTCTL_SECRETS_KEYS (409 when it is not set). A removed destination's name may be used again. "
        "Needs an admin key. Audited.",
        request=DestinationCreateSerializer,
        responses={
            201: OpenApiResponse(DestinationSerializer, description="Created; `Location` points at it."),
            **errors(
                400, 403, 409, 413, 415, 422, d409="The name is taken, or CERTCTL_SECRETS_KEYS is not set.",
                d422="The channel does not take this config; `fields` names each config.<field>.",
            ),
        },
        examples=[OpenApiExample("A second Webhook receiver", request_only=True, value=_WEBHOOK_DESTINATION)],
    )
    def post(self, request: Request) -> Response:
        serializer = DestinationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        destination = create_destination(**serializer.validated_data, actor=actor_for(request))
        location = reverse("api:destination-detail", kwargs={"name": destination.name}, request=request)
        return Response(
            DestinationSerializer(destination_row(destination)).data, status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )


class DestinationDetailView(APIView):
    @extend_schema(
        summary="Get one destination", parameters=[DESTINATION_NAME],
        responses={200: DestinationSerializer, **errors(404, d404="No destination of this name.")},
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(DestinationSerializer(get_destination(name)).data)

    @extend_schema(
        summary="Change a destination",
        description="Only the fields given change. `config` is merged: a field left out keeps its value (a secret "
        "one too), one given as \"\" or null is cleared; the result is validated by the channel (422). "
        "Environment destinations are read-only (409 naming the variables to change). Needs an admin key. Audited.",
        parameters=[DESTINATION_NAME], request=DestinationUpdateSerializer,
        responses={
            200: DestinationSerializer,
            **errors(
                400, 403, 404, 409, 413, 415, 422, d404="No destination of this name.",
                d409="An environment destination, or CERTCTL_SECRETS_KEYS cannot seal or open its secrets.",
                d422="The channel does not take the resulting config; `fields` names each config.<field>.",
            ),
        },
        examples=[
            OpenApiExample("Rotate the signing secret", request_only=True, value={"config": {"secret": "s3cr3t-v2"}}),
            OpenApiExample("Disable", request_only=True, value={"enabled": False}),
        ],
    )
    def patch(self, request: Request, name: str) -> Response:
        serializer = DestinationUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        destination = update_destination(name, **serializer.validated_data, actor=actor_for(request))
        return Response(DestinationSerializer(destination_row(destination)).data)

    @extend_schema(
        summary="Remove a destination",
        description="Removes it from every route, then from the list; its events' history stays. Refused (409) "
        "while some of its events are pending or failed, and for environment destinations. Needs an admin key.",
        parameters=[DESTINATION_NAME], request=None,
        responses={
            204: OpenApiResponse(description="Removed."),
            **errors(403, 404, 409, d404="No destination of this name.",
                     d409="Events of it are still unsent, or it is an environment destination."),
        },
    )
    def delete(self, request: Request, name: str) -> Response:
        delete_destination(name, actor=actor_for(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DestinationTestView(APIView):
    @extend_schema(
        summary="Send a test message",
        description="One real delivery of a test message through the destination (environment ones too), not stored "
        "as a notification: answers the outcome, the receiver's HTTP status, the duration and the error with every "
        "secret hidden. A destination that cannot deliver answers `permanent` with the reason, sending nothing. "
        "Needs an admin key. Audited.",
        parameters=[DESTINATION_NAME], request=None,
        responses={200: TestOutcomeSerializer, **errors(403, 404, 405, 409, d404="No destination of this name.",
                                                        d409="CERTCTL_SECRETS_KEYS cannot open its secrets.")},
    )
    def post(self, request: Request, name: str) -> Response:
        return Response(TestOutcomeSerializer(send_test(name, actor=actor_for(request))).data)


class DestinationPauseView(APIView):
    pause = True

    @extend_schema(
        summary="Pause or resume a destination",
        description="Pause holds the destination's events (a maintenance window; they spend no retries) until "
        "resumed; resume lets them flow at once. Only this destination's events wait: others of the same channel go "
        "on. Stored and environment destinations alike. Needs an admin key. Audited. Answers the destination.",
        parameters=[DESTINATION_NAME], request=None,
        responses={200: DestinationSerializer, **errors(403, 404, 405, d404="No destination of this name.")},
    )
    def post(self, request: Request, name: str) -> Response:
        change = pause_destination if self.pause else resume_destination
        change(name, actor_for(request))
        return Response(DestinationSerializer(get_destination(name)).data)
ROUTE_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The route's id.")
ROUTE_EXAMPLE = OpenApiExample(
    "Payments team's expiring certificates in production",
    request_only=True,
    value={
        "name": "payments-expiry", "match": {"types": ["ExpirationWarning"], "labels": {"team": "payments"},
                                             "certificate_ids": ["mc-*-prod"]},
        "destinations": ["payments-slack", "payments-pager"], "continue_matching": False,
    },
)
ALERT_EXAMPLE = OpenApiExample(
    "An expiring certificate of the payments team",
    request_only=True,
    value={
        "type": "ExpirationWarning", "message": "api.example.com expires in 7 days", "certificate_id": "mc-api-prod",
        "severity": "warning", "labels": {"team": "payments", "env": "prod"}, "dedup_key": "mc-api-prod-expiry-7d",
    },
)
NOWHERE_TO_GO = (
    "Well-formed, but nowhere to go: no route matched and there is no default route, or the matching routes have no "
    "enabled destination (`fields.routes` says which); or no recipient for an Email destination without recipients."
)


def _route_answer(route: Route) -> dict[str, Any]:
    return dict(RouteSerializer(route).data)


@extend_schema_view(
    list=extend_schema(
        summary="List routes",
        description="Every route in evaluation order (the default route last), enabled or not. Any valid key.",
        responses={200: RouteListSerializer},
    ),
    create=extend_schema(
        summary="Create a route",
        description="A route at `position` (left out: last); the routes from there move down one. Takes effect for "
        "the next alert in every process. Needs an admin key.",
        request=RouteWriteSerializer, examples=[ROUTE_EXAMPLE],
        responses={
            201: RouteSerializer,
            **errors(400, 403, 413, 415, 422, d422="An unknown destination, a name taken, a second default route, or a "
                     "default route with a match."),
        },
    ),
    retrieve=extend_schema(
        summary="Get a route", parameters=[ROUTE_ID],
        responses={200: RouteSerializer, **errors(404, d404="No route with this id.")},
    ),
    partial_update=extend_schema(
        summary="Change a route",
        description="Changes the fields given; `position` moves it in the order. Needs an admin key.",
        parameters=[ROUTE_ID], request=RouteWriteSerializer,
        responses={
            200: RouteSerializer,
            **errors(400, 403, 404, 413, 415, 422, d404="No route with this id.",
                     d422="An unknown destination, a name taken, or a second default route."),
        },
    ),
    destroy=extend_schema(
        summary="Delete a route", description="The routes below move up one. Needs an admin key.",
        parameters=[ROUTE_ID], responses={204: None, **errors(403, 404, d404="No route with this id.")},
    ),
)
class RouteViewSet(viewsets.ViewSet):
    parser_classes = [LimitedJSONParser]
    lookup_value_regex = r"[0-9]+"

    def list(self, request: Request) -> Response:
        routes = routes_in_order()
        return Response(RouteListSerializer({"data": routes, "total": len(routes)}).data)

    def create(self, request: Request) -> Response:
        serializer = RouteWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        arguments = serializer.validated_data
        route = create_route(
            name=arguments["name"], match=arguments.get("match", {}), destinations=arguments["destinations"],
            continue_matching=arguments.get("continue_matching", False), enabled=arguments.get("enabled", True),
            is_default=arguments.get("is_default", False), position=arguments.get("position"),
            actor=actor_for(request),
        )
        return Response(_route_answer(get_route(route.id)), status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(_route_answer(get_route(int(pk))))

    def partial_update(self, request: Request, pk: str) -> Response:
        serializer = RouteWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        update_route(int(pk), **serializer.validated_data, actor=actor_for(request))
        return Response(_route_answer(get_route(int(pk))))

    def destroy(self, request: Request, pk: str) -> Response:
        delete_route(int(pk), actor=actor_for(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Reorder the routes",
        description="`order` lists every route's id but the default route's, each once; they are evaluated in that "
        "order. Needs an admin key. Answers the routes in their new order.",
        request=RouteOrderSerializer,
        responses={
            200: RouteListSerializer,
            **errors(400, 403, 413, 415, 422, d422="The list leaves out a route, repeats one, names an unknown one or "
                     "the default route (the message says which)."),
        },
    )
    @action(detail=False, methods=["post"])
    def reorder(self, request: Request) -> Response:
        serializer = RouteOrderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        routes = reorder_routes(serializer.validated_data["order"], actor=actor_for(request))
        return Response(RouteListSerializer({"data": routes, "total": len(routes)}).data)

    @extend_schema(
        summary="Where would an alert go",
        description="Evaluates the routes for the alert given (the body of POST /api/v1/alerts) and answers the "
        "destinations and the routes that matched; nothing is created. Any valid key.",
        request=AlertCreateSerializer, examples=[ALERT_EXAMPLE],
        responses={200: RoutingSerializer, **errors(400, 413, 415, 422, d422=NOWHERE_TO_GO)},
    )
    @action(detail=False, methods=["post"], url_path="test")
    def test_alert(self, request: Request) -> Response:
        serializer = AlertCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(RoutingSerializer(route_alert(**serializer.alert_arguments())).data)


class AlertView(APIView):
    parser_classes = [LimitedJSONParser]

    @extend_schema(
        summary="Raise an alert",
        description="Evaluates the routes and creates one notification per destination they choose, in one "
        "transaction (all or none). With a `dedup_key`, a destination that already has a notification with it keeps "
        "that one (`created: false`); when every destination had one, the answer is 200 instead of 201. "
        "Needs an admin key.",
        request=AlertCreateSerializer, examples=[ALERT_EXAMPLE],
        responses={
            201: OpenApiResponse(AlertResultSerializer, description="At least one notification created."),
            200: OpenApiResponse(AlertResultSerializer, description="Every destination had this dedup_key already."),
            **errors(400, 403, 413, 415, 422, d422=NOWHERE_TO_GO),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = AlertCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = create_alert(**serializer.alert_arguments(), actor=actor_for(request))
        created = any(created for _, created in result.events)
        return Response(
            AlertResultSerializer(result).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )
