"""The models layer: notification events and their history, destinations and routes and their delivery state, and the
engine's bookkeeping.

Django, the migrations and every layer above import from here; each module holds one part of the domain.
"""
from notifications.models.bookkeeping import (
    DeliveryKick,
    DeliveryTotal,
    LastPass,
    MetricsFold,
    NotificationCount,
    NotificationCountQuerySet,
    PassKind,
)
from notifications.models.destination_states import DestinationCondition, DestinationState
from notifications.models.destinations import (
    DESTINATION_NAME_PATTERN,
    DESTINATION_NAME_RULE,
    ConfigurationAction,
    ConfigurationActionKind,
    ConfigurationTarget,
    ConfigVersion,
    Destination,
    DestinationQuerySet,
    Route,
    destination_name_problem,
)
from notifications.models.events import (
    CAUSE_LENGTH,
    EVENT_ID_PATTERN,
    EVENT_ID_RULE,
    LABEL_KEY_PATTERN,
    LEASE_RELEASED,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    REQUEUE_RESET,
    RESERVED_EVENT_IDS,
    CauseKind,
    Channel,
    ColumnValue,
    EventQuerySet,
    EventType,
    Group,
    ListedStatus,
    NotificationEvent,
    Severity,
    Status,
    event_id_problem,
    event_subject,
    labels_problem,
    new_event_id,
    one_of,
    set_clause,
)
from notifications.models.history import ActionKind, AttemptOutcome, NotificationAttempt, OperatorAction

__all__ = [
    "CAUSE_LENGTH", "DESTINATION_NAME_PATTERN", "DESTINATION_NAME_RULE", "EVENT_ID_PATTERN", "EVENT_ID_RULE",
    "LABEL_KEY_PATTERN", "LEASE_RELEASED", "MAX_LABELS", "MAX_LABEL_VALUE", "REQUEUE_RESET", "RESERVED_EVENT_IDS",
    "ActionKind", "AttemptOutcome", "CauseKind", "Channel", "ColumnValue", "ConfigVersion", "ConfigurationAction",
    "ConfigurationActionKind", "ConfigurationTarget", "DeliveryKick", "DeliveryTotal", "Destination",
    "DestinationCondition", "DestinationQuerySet", "DestinationState", "EventQuerySet", "EventType", "Group",
    "LastPass", "ListedStatus", "MetricsFold", "NotificationAttempt", "NotificationCount", "NotificationCountQuerySet",
    "NotificationEvent", "OperatorAction", "PassKind", "Route", "Severity", "Status", "destination_name_problem",
    "event_id_problem", "event_subject", "labels_problem", "new_event_id", "one_of", "set_clause",
]
