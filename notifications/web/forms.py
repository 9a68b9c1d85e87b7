"""The filters of the operator UI's notification list: how they are shown; notifications.filtersets selects."""
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django import forms

from notifications.filtersets import FilterOption, TimeField, filter_options
from notifications.models import Status

TAB_ALL = "all"
TAB_DEAD = "dead"
VIEW_LIST = "list"
VIEW_GROUPS = "groups"


def _with_any(choices: Sequence[tuple[str, str]], label: str) -> list[tuple[str, str]]:
    return [("", label), *choices]


class TimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def format_value(self, value: Any) -> str | None:
        # What the operator typed, as a browser's datetime-local field sends it back (UTC, to the minute).
        if hasattr(value, "strftime"):
            typed: str = value.strftime("%Y-%m-%dT%H:%M")
            return typed
        return None if value is None else str(value)


def _query_value(value: Any) -> str:
    if isinstance(value, datetime):
        # In the offset it was given in: converted, a time in the year 1000 could fall into 999, out of range.
        return value.isoformat().replace("+00:00", "Z")
    return "on" if value is True else str(value)


# What the list page calls some filters; any other is named after the filter ("certificate_id": "Certificate id").
LABELS = {"error": "Error contains", "q": "Search", "cause_kind": "Kind"}
# What a text filter's box shows while empty, where the form of its value is not obvious.
PLACEHOLDERS = {"label": "team=payments", "destination": "e.g. Webhook"}
# The tabs and "Show dismissed" say these; the page's own "status" is the delivery state (see service_filters).
NOT_OFFERED = ("status", "delivery_status", "read")


def _label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def filter_field(option: FilterOption) -> forms.Field:
    """A form field for one FilterSet filter: the same name, values, limit and help as every other interface's."""
    label = _label(option.name)
    if option.time:
        return TimeField(
            label=label, required=False, widget=TimeInput, help_text=option.help,
            error_messages={"invalid": "must be a time such as 2026-11-29T09:00 (UTC)"},
        )
    if option.choices:
        choices = [(value, value) for value in option.choices]
        return forms.ChoiceField(label=label, choices=_with_any(choices, f"Any {label.lower()}"), required=False)
    placeholder = PLACEHOLDERS.get(option.name)
    return forms.CharField(
        label=label, max_length=option.max_length, required=False, help_text=option.help,
        widget=forms.TextInput(attrs={"placeholder": placeholder} if placeholder else None),
    )


class NotificationFilterForm(forms.Form):
    """The tab plus the filters of /notifications/; every field is optional and they all combine. The filters are
    the FilterSet's (notifications.filtersets.filter_options), so a filter added there is offered here too."""

    tab = forms.ChoiceField(choices=[(TAB_ALL, "All"), (TAB_DEAD, "Dead letter")], required=False)
    view = forms.ChoiceField(choices=[(VIEW_LIST, "List"), (VIEW_GROUPS, "Group by cause")], required=False)
    status = forms.ChoiceField(
        label="Status", choices=_with_any(Status.choices, "Any status"), required=False,
        help_text="The delivery state, whether read or not.",
    )
    dismissed = forms.BooleanField(
        label="Show dismissed", required=False,
        help_text="Dead letter tab: also list the dead notifications an operator dismissed (marked read).",
    )

    # Set by a group's links and buttons (Group by cause), not offered as filters of their own.
    GROUP_FIELDS = ("cause_kind", "cause")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offered = {option.name: filter_field(option) for option in filter_options(excluded=NOT_OFFERED)}
        # The FilterSet's order, with the delivery state after the choices and "Show dismissed" last.
        fields = {"tab": self.fields["tab"], "view": self.fields["view"]}
        for name, field in offered.items():
            fields[name] = field
            if name == "type":
                fields["status"] = self.fields["status"]
        fields.setdefault("status", self.fields["status"])
        fields["dismissed"] = self.fields["dismissed"]
        self.fields = fields
        self.FILTER_FIELDS = tuple(name for name in fields if name not in ("tab", "view"))

    @property
    def selected_tab(self) -> str:
        return (self.cleaned_data.get("tab") if self.is_bound and self.is_valid() else None) or TAB_ALL

    @property
    def grouped(self) -> bool:
        return self.selected_tab == TAB_DEAD and self.is_valid() and self.cleaned_data.get("view") == VIEW_GROUPS

    def active_filters(self) -> dict[str, Any]:
        """The filters the operator set, without the tab: {name: value}. "Show dismissed" counts on the Dead letter
        tab only."""
        filters = {name: self.cleaned_data[name] for name in self.FILTER_FIELDS if self.cleaned_data.get(name)}
        if self.selected_tab != TAB_DEAD:
            filters.pop("dismissed", None)
        return filters

    def query_values(self) -> dict[str, str]:
        """The active filters as they travel in a URL or a hidden form field."""
        return {
            name: _query_value(value)
            for name, value in self.active_filters().items()
        }

    @property
    def shows_dismissed(self) -> bool:
        return bool(self.active_filters().get("dismissed"))

    def service_filters(self) -> dict[str, str]:
        """The selection in the terms of notifications.filtersets, which every list and bulk action uses.

        The UI's status filter is the delivery state (delivery_status); the Dead letter tab is the dead events not
        yet dismissed, or all dead ones with "Show dismissed".
        """
        filters = self.query_values()
        show_dismissed = filters.pop("dismissed", None)
        if "status" in filters:
            filters["delivery_status"] = filters.pop("status")
        if self.selected_tab == TAB_DEAD:
            filters["delivery_status"] = Status.DEAD
            if not show_dismissed:
                filters["read"] = "false"
        return filters

    def describe(self) -> str:
        """The filters in words, for confirmations: "channel Webhook, text "timeout""."""
        parts = []
        for name, value in self.query_values().items():
            if name == "dismissed":
                parts.append("dismissed ones included")
            else:
                parts.append(f'{(self.fields[name].label or name).lower()} "{value}"')
        return ", ".join(parts)
