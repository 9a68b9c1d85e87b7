"""Django admin for notification events. Delivery state is read-only here: requeue and mark read go through
notifications.operations."""
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import truncatechars

from notifications.actors import Actor
from notifications.errors import InvalidInput
from notifications.models import (
    ChannelAction,
    ChannelState,
    Destination,
    NotificationAttempt,
    NotificationEvent,
    OperatorAction,
    Route,
)
from notifications.operations.channels import pause_channel, resume_channel
from notifications.operations.events import mark_read_events, requeue_events, validate_event_input
from notifications.operations.routes import create_route, delete_route, update_route
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


@admin.register(ChannelState)
class ChannelStateAdmin(admin.ModelAdmin[ChannelState]):
    """Breaker and pause state per channel. Changed only through its actions (operations.channels.pause/resume_channel)
    and by the delivery engine."""

    list_display = ("channel", "state", "consecutive_failures", "opened_at", "next_probe_at", "paused_at", "paused_by")
    readonly_fields = list_display
    fields = list_display
    actions = ("pause_selected", "resume_selected")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ChannelState | None = None) -> bool:
        return False

    # Pausing holds deliveries: the same permission as requeue.
    def has_change_permission(self, request: HttpRequest, obj: ChannelState | None = None) -> bool:
        return request.user.has_perm("notifications.change_notificationevent")

    @admin.action(description="Pause selected channels", permissions=["change"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[ChannelState]) -> None:
        actor = Actor(request.user.get_username(), "admin")
        changed = [state.channel for state in queryset if pause_channel(state.channel, actor)]
        self.message_user(request, f"Paused: {', '.join(changed) or 'none (already paused)'}.")

    @admin.action(description="Resume selected channels", permissions=["change"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[ChannelState]) -> None:
        actor = Actor(request.user.get_username(), "admin")
        changed = [state.channel for state in queryset if resume_channel(state.channel, actor)]
        self.message_user(request, f"Resumed: {', '.join(changed) or 'none (none was paused)'}.")


@admin.register(ChannelAction)
class ChannelActionAdmin(admin.ModelAdmin[ChannelAction]):
    list_display = ("created_at", "channel", "action", "actor", "source")
    list_filter = ("channel", "action")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ChannelAction | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ChannelAction | None = None) -> bool:
        return False


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
