"""REST endpoints under /api/v1 (DESIGN §5). Thin: every change goes through notifications.services."""
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from notifications import services
from notifications.api.auth import actor_for
from notifications.api.filters import EnvelopePagination, NotificationFilter
from notifications.api.parsers import MAX_JSON_DEPTH, LimitedJSONParser
from notifications.api.serializers import (
    NO_NUL,
    BulkReadResultSerializer,
    BulkRequeueResultSerializer,
    BulkSelectionSerializer,
    ChannelListSerializer,
    ChannelSerializer,
    ErrorSerializer,
    MarkedReadSerializer,
    NotificationAttemptSerializer,
    NotificationCreateSerializer,
    NotificationEventSerializer,
    RequeuedSerializer,
    StatsSummarySerializer,
)
from notifications.models import NotificationEvent

_ERROR_DESCRIPTIONS = {
    400: f"Invalid input: a query value, the JSON body (also when nested deeper than {MAX_JSON_DEPTH} levels) or a field; "
    "`fields` says which, and names unknown or read-only fields.",
    401: 'No key, or an unknown key. Send `Authorization: Bearer <key>`. Comes with `WWW-Authenticate: Bearer realm="certctl"`.',
    403: "Creating and requeueing need an admin key (a read-only key may list, get and mark read), "
    "or a browser session sent no CSRF token.",
    404: "No notification with this id.",
    405: "Method not allowed here; the `Allow` header lists the allowed ones.",
    409: "The notification is not failed or dead (the message names its current status), or it is being delivered right now.",
    413: "The body is larger than CERTCTL_API_MAX_BODY_BYTES (2 MiB by default).",
    415: "The body is not JSON: send `Content-Type: application/json`.",
}


def errors(*codes, **descriptions):
    return {
        code: OpenApiResponse(ErrorSerializer, description=descriptions.get(f"d{code}", _ERROR_DESCRIPTIONS[code]))
        for code in codes
    }


class IdTaken(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def bulk_request(what: str) -> dict:
    """Either ids or filters, never both: a oneOf that a serializer cannot express."""
    return {
        "oneOf": [
            {
                "title": "By ids",
                "type": "object",
                "required": ["ids"],
                "additionalProperties": False,
                "properties": {
                    "ids": {
                        "type": "array", "maxItems": services.MAX_BULK_IDS,
                        "items": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NO_NUL.regex.pattern},
                        "description": f"Notifications to {what}, at most {services.MAX_BULK_IDS}.",
                    }
                },
            },
            {
                "title": "By filter",
                "type": "object",
                "minProperties": 1,
                "additionalProperties": False,
                "properties": {
                    "status": {
                        "allOf": [_ref("NotificationStatus")],
                        "description": '"read" = acknowledged events; a delivery state = that state and unread.',
                    },
                    "delivery_status": {
                        "allOf": [_ref("DeliveryStatus")], "description": "This delivery state, read or not.",
                    },
                    "channel": _ref("NotificationChannel"),
                    "type": _ref("NotificationType"),
                    "certificate_id": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": NO_NUL.regex.pattern},
                },
            },
        ]
    }


EVENT_ID = OpenApiParameter("id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The notification's id, e.g. notif-01JD0Z8F3QG5V8X4T6Y2R1M9KC.")


@extend_schema_view(
    list=extend_schema(
        summary="List notifications",
        description="Newest first (created_at, then id), so pages are stable. `total` counts every match.",
        responses={200: NotificationEventSerializer(many=True), **errors(400)},
    ),
    create=extend_schema(
        summary="Create a notification",
        description="Creates a pending notification and hands it to the workers. With a `dedup_key` that is already "
        "known, nothing is created and the existing notification is returned with 200.",
        request=NotificationCreateSerializer,
        responses={
            201: OpenApiResponse(NotificationEventSerializer, description="Created; `Location` points at it."),
            200: OpenApiResponse(NotificationEventSerializer, description="An event with this dedup_key already exists; here it is."),
            **errors(400, 403, 409, 413, 415, d409="The client-chosen `id` belongs to another notification."),
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
        description="By `ids` (at most 10 000) or by filter (`status`, `delivery_status`, `channel`, `type`, "
        "`certificate_id`, with the list's meaning: `status=dead` selects the unread dead ones). "
        "Only failed and dead notifications move; the rest are counted as skipped. Needs an admin key.",
        request={"application/json": bulk_request("requeue")},
        responses={200: BulkRequeueResultSerializer, **errors(400, 403, 405, 413, 415)},
        examples=[
            OpenApiExample("By id", request_only=True, value={"ids": ["notif-01JD0Z8F3QG5V8X4T6Y2R1M9KC"]}),
            OpenApiExample("Every dead Slack alert", request_only=True, value={"status": "dead", "channel": "Slack"}),
        ],
    ),
    bulk_read=extend_schema(
        summary="Mark many notifications read (dismiss dead ones)",
        operation_id="notifications_bulk_read",
        description="By `ids` (at most 10 000) or by filter, like bulk requeue. Unread events become read; dead ones "
        "are thereby dismissed from the dead-letter queue. Delivery is untouched. Unknown ids and events already "
        "read are counted as skipped. Read-only keys may do this.",
        request={"application/json": bulk_request("mark read")},
        responses={200: BulkReadResultSerializer, **errors(400, 403, 405, 413, 415)},
        examples=[
            OpenApiExample("By id", request_only=True, value={"ids": ["notif-01JD0Z8F3QG5V8X4T6Y2R1M9KC"]}),
            OpenApiExample("Dismiss every dead Slack alert", request_only=True, value={"status": "dead", "channel": "Slack"}),
        ],
    ),
)
class NotificationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = NotificationEvent.objects.order_by("-created_at", "-id")
    serializer_class = NotificationEventSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = NotificationFilter
    pagination_class = EnvelopePagination
    parser_classes = [LimitedJSONParser]
    lookup_field = "id"
    lookup_value_regex = r"[^/\x00]+"

    def get_serializer_class(self):
        if self.action == "create":
            return NotificationCreateSerializer
        if self.action in ("bulk_requeue", "bulk_read"):
            return BulkSelectionSerializer
        return NotificationEventSerializer

    def create(self, request):
        serializer = NotificationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            event, created = services.create_event(**serializer.service_arguments())
        except services.EventIdTaken as exc:
            raise IdTaken(exc.errors["id"]) from None
        body = NotificationEventSerializer(event).data
        if not created:
            return Response(body, status=status.HTTP_200_OK)
        location = reverse("api:notification-detail", kwargs={"id": event.id}, request=request)
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})

    def retrieve(self, request, id):
        return Response(NotificationEventSerializer(services.get_event(id)).data)

    @action(detail=True, methods=["get"], filter_backends=[])
    def attempts(self, request, id):
        event = services.get_event(id)
        page = self.paginate_queryset(event.attempts.order_by("number"))
        return self.get_paginated_response(NotificationAttemptSerializer(page, many=True).data)

    @action(detail=True, methods=["post"])
    def read(self, request, id):
        services.mark_read(id, actor_for(request))
        return Response({"status": "marked_as_read"})

    @action(detail=True, methods=["post"])
    def requeue(self, request, id):
        services.requeue_event(id, actor_for(request))
        return Response({"status": "requeued"})

    @action(
        detail=False, methods=["post"], url_path="requeue", url_name="bulk-requeue",
        filter_backends=[], pagination_class=None,
    )
    def bulk_requeue(self, request):
        serializer = BulkSelectionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.requeue_events(actor_for(request), **serializer.validated_data)
        return Response({"requeued": result.requeued, "skipped": result.skipped})

    @action(
        detail=False, methods=["post"], url_path="read", url_name="bulk-read",
        filter_backends=[], pagination_class=None,
    )
    def bulk_read(self, request: Request) -> Response:
        serializer = BulkSelectionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.mark_read_events(actor_for(request), **serializer.validated_data)
        return Response({"marked_read": result.marked_read, "skipped": result.skipped})


class StatsSummaryView(APIView):
    @extend_schema(
        summary="Dashboard summary",
        description="Counts per delivery status (certctl's names), the dead events no operator has dismissed yet "
        "(`notifications_dead_unacknowledged`) and the oldest retry that is due but not yet taken.",
        responses={200: StatsSummarySerializer},
    )
    def get(self, request):
        return Response(StatsSummarySerializer(services.stats_summary()).data)


CHANNEL_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, description="A channel, e.g. Webhook (any letter case).")


class ChannelListView(APIView):
    @extend_schema(
        summary="Channels and their state",
        description="Each channel with its circuit breaker or pause state (closed, open, paused).",
        responses={200: ChannelListSerializer},
    )
    def get(self, request):
        channels = services.channel_states()
        return Response({"data": ChannelSerializer(channels, many=True).data, "total": len(channels)})


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
    def post(self, request, name):
        change = services.pause_channel if self.pause else services.resume_channel
        change(name, actor_for(request))
        state = next(channel for channel in services.channel_states() if channel["name"].lower() == name.lower())
        return Response(ChannelSerializer(state).data)
