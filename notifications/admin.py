"""Django admin for notification events and destinations. Delivery state is read-only here: requeue and mark read
go through notifications.operations, and so does every change of a destination (audited, source "admin")."""
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import truncatechars
from django.urls import reverse

from notifications.actors import Actor
from notifications.errors import DestinationConflict, InvalidInput, ServiceError
from notifications.models import (
    Channel,
    ConfigurationAction,
    Destination,
    DestinationState,
    NotificationAttempt,
    NotificationEvent,
    OperatorAction,
    Route,
)
from notifications.notifiers import ConfigField, destination_problem, notifiers
from notifications.operations.destinations import create_destination, delete_destination, update_destination
from notifications.operations.events import mark_read_events, requeue_events, validate_event_input
from notifications.operations.pausing import pause_destination, resume_destination
from notifications.operations.routes import create_route, delete_route, update_route
from notifications.queries.destinations import destination_row
from notifications.queries.events import retry_display
from notifications.queries.routing import clean_match, route_destinations


class AttemptInline(admin.TabularInline[NotificationAttempt, NotificationEvent]):
    model = NotificationAttempt
    fields = ("number", "started_at", "duration_ms", "outcome", "http_status", "resulting_status", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("number",)

    def has_add_permission(self, request: HttpRequest, obj: NotificationEvent | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: NotificationEvent | None = None) -> bool:
        return False


class OperatorActionInline(admin.TabularInline[OperatorAction, NotificationEvent]):
    model = OperatorAction
    verbose_name = "operator action"
    fields = ("created_at", "action", "bulk", "actor", "source", "previous_status")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: NotificationEvent | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: NotificationEvent | None = None) -> bool:
        return False


# What an operator may correct by hand (e.g. a wrong address before a requeue); everything else is delivery state.
EDITABLE_FIELDS = ("type", "channel", "recipient", "certificate_id", "severity", "message", "dedup_key")


class NotificationEventForm(forms.ModelForm[NotificationEvent]):
    """Checks an edit with the rules every other interface uses (operations.events.validate_event_input)."""

    class Meta:
        model = NotificationEvent
        fields = EDITABLE_FIELDS

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        if self.errors:
            return data
        try:
            validate_event_input(**{name: self.cleaned_data.get(name) or None for name in EDITABLE_FIELDS})
        except InvalidInput as exc:
            for name, message in exc.errors.items():
                self.add_error(name if name in self.fields else None, message)
        return data


@admin.register(NotificationEvent)
class NotificationEventAdmin(admin.ModelAdmin[NotificationEvent]):
    form = NotificationEventForm
    list_display = (
        "id", "status", "read_at", "channel", "type", "retries", "next_retry_at", "last_error_short", "created_at",
    )
    list_filter = ("status", "channel", "type")
    search_fields = ("id", "recipient", "certificate_id", "message")
    date_hierarchy = "created_at"
    list_per_page = 50
    inlines = (AttemptInline, OperatorActionInline)
    actions = ("requeue_selected", "mark_read_selected")
    # Delivery state and the lease belong to operations and the engine; an edit here would bypass the state machine.
    readonly_fields = (
        "id", "status", "retry_count", "next_retry_at", "last_error", "cause_kind", "cause", "sent_at", "read_at",
        "claimed_until", "claim_token", "created_at", "updated_at",
    )
    fieldsets = (
        (None, {
            "fields": ("id", "type", "channel", "recipient", "certificate_id", "severity", "message", "dedup_key"),
        }),
        ("Delivery (read-only: use the Requeue selected and Mark read / dismiss selected actions)", {
            "fields": (
                "status", "retry_count", "next_retry_at", "last_error", "cause_kind", "cause", "sent_at", "read_at",
            ),
        }),
        ("Bookkeeping", {
            "fields": ("created_at", "updated_at", "claimed_until", "claim_token"), "classes": ("collapse",),
        }),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Events are created by the API, CLI or operations, which also hand them to the workers.
        return False

    def save_model(
        self, request: HttpRequest, obj: NotificationEvent, form: NotificationEventForm, change: bool
    ) -> None:
        # Only the edited columns: a full save would write back the status and lease read with the form,
        # over whatever a worker recorded meanwhile.
        changed = [name for name in form.changed_data if name in EDITABLE_FIELDS]
        if changed:
            obj.save(update_fields=[*changed, "updated_at"])

    @admin.display(description="Retries", ordering="retry_count")
    def retries(self, event: NotificationEvent) -> str:
        return retry_display(event)

    @admin.display(description="Last error")
    def last_error_short(self, event: NotificationEvent) -> str:
        return truncatechars(event.last_error, 80) if event.last_error else "—"

    @admin.action(description="Requeue selected", permissions=["change"])
    def requeue_selected(self, request: HttpRequest, queryset: QuerySet[NotificationEvent]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        try:
            result = requeue_events(actor=Actor(request.user.get_username(), "admin"), ids=ids)
        except InvalidInput as exc:
            self.message_user(request, f"Nothing requeued: {exc.message}.", messages.ERROR)
            return
        self.message_user(
            request,
            f"{result.requeued} requeued, {result.skipped} skipped (not failed or dead).",
            messages.SUCCESS if result.requeued else messages.WARNING,
        )

    # Viewing is enough: marking read never starts or stops a delivery (certctl's read-only role may do it too).
    @admin.action(description="Mark read / dismiss selected", permissions=["view"])
    def mark_read_selected(self, request: HttpRequest, queryset: QuerySet[NotificationEvent]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        try:
            result = mark_read_events(actor=Actor(request.user.get_username(), "admin"), ids=ids)
        except InvalidInput as exc:
            self.message_user(request, f"Nothing marked read: {exc.message}.", messages.ERROR)
            return
        self.message_user(
            request,
            f"{result.marked_read} marked read (dead ones are dismissed from the dead-letter queue), "
            f"{result.skipped} skipped (already read).",
            messages.SUCCESS if result.marked_read else messages.WARNING,
        )


@admin.register(DestinationState)
class DestinationStateAdmin(admin.ModelAdmin[DestinationState]):
    """Breaker and pause state per destination. Changed only through its actions
    (operations.pausing.pause/resume_destination) and by the delivery engine."""

    list_display = (
        "destination", "state", "consecutive_failures", "opened_at", "next_probe_at", "paused_at", "paused_by"
    )
    readonly_fields = list_display
    fields = list_display
    actions = ("pause_selected", "resume_selected")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: DestinationState | None = None) -> bool:
        return False

    # Pausing holds deliveries: the same permission as requeue.
    def has_change_permission(self, request: HttpRequest, obj: DestinationState | None = None) -> bool:
        return request.user.has_perm("notifications.change_notificationevent")

    @admin.action(description="Pause selected destinations", permissions=["change"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[DestinationState]) -> None:
        actor = Actor(request.user.get_username(), "admin")
        changed = [state.destination_id for state in queryset if pause_destination(state.destination_id, actor)]
        self.message_user(request, f"Paused: {', '.join(changed) or 'none (already paused)'}.")

    @admin.action(description="Resume selected destinations", permissions=["change"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[DestinationState]) -> None:
        actor = Actor(request.user.get_username(), "admin")
        changed = [state.destination_id for state in queryset if resume_destination(state.destination_id, actor)]
        self.message_user(request, f"Resumed: {', '.join(changed) or 'none (none was paused)'}.")


@admin.register(ConfigurationAction)
class ConfigurationActionAdmin(admin.ModelAdmin[ConfigurationAction]):
    """Who changed, paused or resumed a destination or a route: an audit, read-only."""

    list_display = ("created_at", "target_kind", "target", "action", "actor", "source")
    list_filter = ("target_kind", "action")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ConfigurationAction | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ConfigurationAction | None = None) -> bool:
        return False


def _form_field(field: ConfigField, secret_set: bool) -> forms.Field:
    """A form field for one of a channel's config fields. Every one is optional here: the channel's notifier judges
    the whole config (operations.destinations), and its refusals come back on these fields."""
    label = field.name.replace("_", " ")
    if field.secret:
        state = "set; leave blank to keep it" if secret_set else "not set"
        return forms.CharField(
            required=False, label=label, widget=forms.PasswordInput(render_value=False),
            help_text=f"Secret, write-only ({state}).",
        )
    if field.kind == "bool":
        return forms.TypedChoiceField(
            required=False, label=label, choices=[("", "default"), ("true", "yes"), ("false", "no")],
            coerce=lambda value: value == "true", empty_value=None,
        )
    if field.kind == "int":
        return forms.IntegerField(required=False, label=label, min_value=1, max_value=65535)
    if field.choices:
        choices = [("", "default"), *((choice, choice) for choice in field.choices)]
        return forms.ChoiceField(required=False, label=label, choices=choices)
    return forms.CharField(required=False, label=label, max_length=2000, strip=True)


def _key(channel: str, name: str) -> str:
    return f"{channel}__{name}"


class DestinationForm(forms.ModelForm[Destination]):
    """Name, channel, enabled, description and the channel's fields (all channels' when adding: the chosen one's
    count). Clean runs the operation itself, so that every refusal is shown on its field."""

    actor: Actor

    class Meta:
        model = Destination
        fields = ("name", "channel", "enabled", "description")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.adding = self.instance._state.adding
        channels = Channel.values if self.adding else [self.instance.channel]
        secrets_set: set[str] = set()
        if not self.adding:
            secrets_set = set(destination_row(self.instance)["secrets_set"])
            for name in ("name", "channel"):
                self.fields.pop(name, None)
        for channel in channels:
            for field in notifiers()[channel].fields:
                key = _key(channel, field.name)
                self.fields[key] = _form_field(field, field.name in secrets_set)
                if not self.adding and not field.secret:
                    self.fields[key].initial = self._initial_text(self.instance.config.get(field.name))

    @staticmethod
    def _initial_text(value: object) -> object:
        if isinstance(value, bool):
            return "true" if value else "false"
        return value

    def _config(self, channel: str) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for field in notifiers()[channel].fields:
            value = self.cleaned_data.get(_key(channel, field.name))
            if field.secret and not value:
                continue  # blank keeps the stored secret
            if self.adding and value in (None, ""):
                continue
            config[field.name] = "" if value is None else value
        return config

    def _post_clean(self) -> None:
        if self.errors:
            return
        data = self.cleaned_data
        try:
            if self.adding:
                channel = data["channel"]
                self.instance = create_destination(
                    name=data["name"], channel=channel, config=self._config(channel), enabled=data["enabled"],
                    description=data["description"], actor=self.actor,
                )
            else:
                channel = self.instance.channel
                self.instance = update_destination(
                    self.instance.name, config=self._config(channel), enabled=data["enabled"],
                    description=data["description"], actor=self.actor,
                )
        except InvalidInput as exc:
            for name, text in exc.errors.items():
                key = _key(channel, name.removeprefix("config.")) if name.startswith("config.") else name
                self.add_error(key if key in self.fields else None, text)
        except ServiceError as exc:
            self.add_error(None, exc.message)

    def save(self, commit: bool = True) -> Destination:
        return self.instance  # saved by the operation in _post_clean

    def save_m2m(self) -> None:
        """No many-to-many fields here (routes name destinations, not the other way round)."""


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin[Destination]):
    """Destinations: environment ones read-only (their CERTCTL_ variables define them); the others added, changed
    and removed through notifications.operations.destinations, audited with the admin user as actor."""

    form = DestinationForm
    list_display = ("name", "channel", "enabled", "from_environment", "configured")
    list_filter = ("channel", "enabled", "from_environment")
    search_fields = ("name", "description")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Destination]:
        Destination.objects.ensure_environment()
        return super().get_queryset(request).filter(deleted_at__isnull=True)

    def get_form(
        self, request: HttpRequest, obj: Destination | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        # The model's fields only: the channels' fields are the form's own (DestinationForm.__init__).
        kwargs["fields"] = ["name", "channel", "enabled", "description"] if obj is None else ["enabled", "description"]
        form = super().get_form(request, obj, change=change, **kwargs)
        # The form runs the operation; it needs to know who asks.
        return type(form.__name__, (form,), {"actor": Actor(request.user.get_username(), "admin")})

    def get_fieldsets(self, request: HttpRequest, obj: Destination | None = None) -> Any:
        if obj is not None and obj.from_environment:
            return [(
                "Defined by the channel's CERTCTL_ variables: change them and restart",
                {"fields": ["name", "channel", "enabled", "description", "configured"]},
            )]
        if obj is not None:
            fields = [_key(obj.channel, field.name) for field in notifiers()[obj.channel].fields]
            return [(None, {"fields": ["enabled", "description"]}), (f"{obj.channel} fields", {"fields": fields})]
        return [
            (None, {"fields": ["name", "channel", "enabled", "description"]}),
            *(
                (
                    f"{channel} fields (used when the channel is {channel})",
                    {"fields": [_key(channel, field.name) for field in cls.fields], "classes": ["collapse"]},
                )
                for channel, cls in notifiers().items()
            ),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Destination | None = None) -> list[str]:
        if obj is not None and obj.from_environment:
            return ["name", "channel", "enabled", "description", "configured"]
        return []

    def has_change_permission(self, request: HttpRequest, obj: Destination | None = None) -> bool:
        return super().has_change_permission(request, obj) and not (obj is not None and obj.from_environment)

    def has_delete_permission(self, request: HttpRequest, obj: Destination | None = None) -> bool:
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.from_environment)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, through the operation
        return actions

    def save_model(self, request: HttpRequest, obj: Destination, form: Any, change: bool) -> None:
        """Saved by the operation the form ran."""

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        # The operation decides: it keeps a destination events name (hidden), and refuses while some are unsent.
        return [str(obj) for obj in objs], {}, set(), []

    def delete_model(self, request: HttpRequest, obj: Destination) -> None:
        delete_destination(obj.name, actor=Actor(request.user.get_username(), "admin"))

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except DestinationConflict as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:notifications_destination_change", args=[object_id]))

    @admin.display(description="Configured", boolean=True)
    def configured(self, destination: Destination) -> bool:
        return destination_problem(destination) is None


class RouteForm(forms.ModelForm[Route]):
    """A route's fields, the match as JSON checked by the rules every other interface uses
    (queries.routing.clean_match); the save goes through operations.routes (RouteAdmin.save_model)."""

    match = forms.JSONField(
        required=False, initial=dict,
        help_text='Criteria, all optional: {"types": ["Revocation"], "severities": ["critical"], '
        '"certificate_ids": ["mc-*-prod"], "labels": {"team": "payments"}}. Empty: every alert.',
    )
    destinations = forms.ModelMultipleChoiceField(
        queryset=Destination.objects.live(), required=False,
        widget=FilteredSelectMultiple("destinations", is_stacked=False),
    )
    position = forms.IntegerField(
        required=False, min_value=0,
        help_text="Place in evaluation order, 0 first; empty on a new route: last. The routes below move down.",
    )

    class Meta:
        model = Route
        fields = ("name", "match", "destinations", "continue_matching", "enabled", "is_default", "position")

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        if "match" in self.cleaned_data:
            try:
                self.cleaned_data["match"] = clean_match(self.cleaned_data["match"] or {})
            except InvalidInput as exc:
                self.add_error("match", "; ".join(f"{name}: {text}" for name, text in exc.errors.items()))
        if self.cleaned_data.get("is_default") and self.cleaned_data.get("match"):
            self.add_error("match", "the default route takes every alert no other route matched; leave it empty")
        return data


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin[Route]):
    """Routes in evaluation order. Every save and delete goes through operations.routes: audited with the admin user
    as actor, the configuration version bumped so that every process routes by the change."""

    form = RouteForm
    list_display = ("name", "position", "enabled", "continue_matching", "is_default", "destination_names")
    ordering = ("is_default", "position", "id")
    search_fields = ("name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Route]:
        return super().get_queryset(request).prefetch_related("destinations")

    @admin.display(description="Destinations")
    def destination_names(self, route: Route) -> str:
        return ", ".join(destination.name for destination in route_destinations(route)) or "—"

    def save_model(self, request: HttpRequest, obj: Route, form: RouteForm, change: bool) -> None:
        actor = Actor(request.user.get_username(), "admin")
        data = form.cleaned_data
        names = [destination.name for destination in data["destinations"]]
        fields = dict(
            name=data["name"], match=data["match"], destinations=names, continue_matching=data["continue_matching"],
            enabled=data["enabled"], is_default=data["is_default"], position=data["position"],
        )
        saved = update_route(obj.pk, **fields, actor=actor) if change else create_route(**fields, actor=actor)
        obj.pk, obj.position = saved.pk, saved.position

    def save_related(self, request: HttpRequest, form: RouteForm, formsets: Any, change: bool) -> None:
        """The operation set the destinations."""

    def delete_model(self, request: HttpRequest, obj: Route) -> None:
        delete_route(obj.pk, actor=Actor(request.user.get_username(), "admin"))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Route]) -> None:
        actor = Actor(request.user.get_username(), "admin")
        for route_id in queryset.values_list("id", flat=True):
            delete_route(route_id, actor=actor)
