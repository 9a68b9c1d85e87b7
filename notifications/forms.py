"""The filters of the operator UI's notification list."""
from django import forms
from django.db.models import Q

from notifications.models import Channel, EventType, NotificationEvent, Status

TAB_ALL = "all"
TAB_DEAD = "dead"


def _with_any(choices, label):
    return [("", label), *choices]


class NotificationFilterForm(forms.Form):
    """The tab plus the filters of /notifications/; every field is optional and they all combine."""

    tab = forms.ChoiceField(choices=[(TAB_ALL, "All"), (TAB_DEAD, "Dead letter")], required=False)
    type = forms.ChoiceField(label="Type", choices=_with_any(EventType.choices, "Any type"), required=False)
    channel = forms.ChoiceField(label="Channel", choices=_with_any(Channel.choices, "Any channel"), required=False)
    status = forms.ChoiceField(label="Status", choices=_with_any(Status.choices, "Any status"), required=False)
    certificate_id = forms.CharField(label="Certificate id", max_length=255, required=False)
    dismissed = forms.BooleanField(
        label="Show dismissed", required=False,
        help_text="Dead letter tab: also list the dead notifications an operator dismissed (marked read).",
    )
    q = forms.CharField(
        label="Search",
        max_length=200,
        required=False,
        help_text="Text in the message or recipient, or a notification id.",
    )

    FILTER_FIELDS = ("type", "channel", "status", "certificate_id", "q", "dismissed")

    @property
    def selected_tab(self):
        return (self.cleaned_data.get("tab") if self.is_bound and self.is_valid() else None) or TAB_ALL

    def active_filters(self):
        """The filters the operator set, without the tab: {name: value}. "Show dismissed" counts on the Dead letter tab only."""
        filters = {name: self.cleaned_data[name] for name in self.FILTER_FIELDS if self.cleaned_data.get(name)}
        if self.selected_tab != TAB_DEAD:
            filters.pop("dismissed", None)
        return filters

    @property
    def shows_dismissed(self) -> bool:
        return bool(self.active_filters().get("dismissed"))

    def queryset(self):
        events = NotificationEvent.objects.all()
        filters = self.active_filters()
        if self.selected_tab == TAB_DEAD:
            events = events.filter(status=Status.DEAD)
            if not filters.pop("dismissed", False):
                events = events.filter(read_at__isnull=True)
        text = filters.pop("q", None)
        events = events.filter(**filters)
        if text:
            events = events.filter(Q(message__icontains=text) | Q(recipient__icontains=text) | Q(id=text))
        return events

    def service_filters(self):
        """The same selection as services' bulk filters, or None when free text needs an id list.

        The UI's status filter is the delivery state (services: delivery_status); the Dead letter tab is the dead
        events not yet dismissed (services: status=dead), or all dead ones with "Show dismissed".
        """
        filters = self.active_filters()
        if "q" in filters:
            return None
        show_dismissed = filters.pop("dismissed", False)
        if "status" in filters:
            filters["delivery_status"] = filters.pop("status")
        if self.selected_tab == TAB_DEAD:
            if filters.pop("delivery_status", Status.DEAD) != Status.DEAD:
                return None
            filters["delivery_status" if show_dismissed else "status"] = Status.DEAD
        return filters

    def describe(self):
        """The filters in words, for confirmations: "channel Webhook, text "timeout""."""
        parts = []
        for name, value in self.active_filters().items():
            if name == "dismissed":
                parts.append("dismissed ones included")
            else:
                parts.append(f'{self.fields[name].label.lower()} "{value}"')
        return ", ".join(parts)

