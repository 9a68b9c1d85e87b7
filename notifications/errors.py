"""Refusals with a message fit to show to whoever asked: every interface turns them into its own answer (a 4xx, a
message in the UI, an exit code, a tool error)."""
from collections.abc import Mapping

from notifications.models import Channel


class ServiceError(Exception):
    """A refusal with a message fit to show to the user who asked."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class EventNotFound(ServiceError):
    def __init__(self, event_id: str):
        super().__init__(f"notification {event_id} not found")
        self.event_id = event_id


class RouteNotFound(ServiceError):
    def __init__(self, route_id: object):
        super().__init__(f"route {str(route_id)[:70]} not found; GET /api/v1/routes lists them")
        self.route_id = route_id


class RequeueRefused(ServiceError):
    def __init__(self, event_id: str, current_status: str, reason: str | None = None):
        super().__init__(
            reason
            or f"notification {event_id} is {current_status}; only failed or dead notifications can be requeued"
        )
        self.event_id = event_id
        self.current_status = current_status


class InvalidInput(ServiceError):
    """Bad input, with a message per field: {"channel": "…"}."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {text}" for name, text in errors.items()))


class EventIdTaken(InvalidInput):
    """The client-chosen id belongs to another notification (a conflict, not a malformed field)."""

    def __init__(self, event_id: str):
        super().__init__({"id": f"notification {event_id} already exists"})


class Unprocessable(InvalidInput):
    """Well-formed input the current configuration cannot take: an unknown or disabled destination, an alert no
    route sends anywhere. The REST API answers 422, naming the field."""


class DestinationNotFound(ServiceError):
    """No live destination of this name (never created, or removed)."""

    def __init__(self, name: str):
        super().__init__(f"no destination {name!r}; GET /api/v1/destinations lists them")
        self.name = name


class UnknownChannel(ServiceError):
    def __init__(self, name: str):
        super().__init__(f"no channel {name!r}; channels are {', '.join(Channel.values)}")


class DestinationConflict(ServiceError):
    """A change the destination's current state refuses (the REST API answers 409)."""


class DestinationExists(DestinationConflict):
    def __init__(self, name: str):
        super().__init__(f"destination {name!r} already exists; change it with an update, or choose another name")


class DestinationInUse(DestinationConflict):
    def __init__(self, name: str, unsent: int):
        super().__init__(
            f"destination {name!r} still has {unsent} unsent notification(s) (pending or failed); disable it so that "
            "it takes no new ones, and remove it once they are sent or dead"
        )


class EnvironmentDestination(DestinationConflict):
    def __init__(self, name: str, settings: list[str]):
        super().__init__(
            f"destination {name!r} is defined by environment variables and cannot be changed here; "
            f"change {', '.join(settings)} and restart the service"
        )


class SecretsUnavailable(DestinationConflict):
    """A secret field cannot be sealed or opened: CERTCTL_SECRETS_KEYS is unset, malformed or lacks the key."""
