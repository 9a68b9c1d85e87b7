"""The forms of the Destinations and Routes pages. They only shape what an operator types into the arguments of
notifications.operations; the operations judge it, and their refusals come back on these fields (show_refusal)."""
from collections.abc import Iterable, Mapping
from typing import Any

from django import forms

from notifications.errors import InvalidInput
from notifications.models import EventType, Severity
from notifications.notifiers import ConfigField, notifiers

CLEAR_SUFFIX = "__clear"
LABELS_HELP = "One per line as key=value, e.g. team=payments."


def _field_label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def config_form_field(field: ConfigField, secret_set: bool) -> forms.Field:
    """A form field for one of a channel's declared config fields (the notifier registry's ConfigField). Required
    ones are marked but judged by the notifier with the whole config, as every other interface's are."""
    label = _field_label(field.name) + (" (required)" if field.required else "")
    if field.secret:
        return forms.CharField(
            label=label, required=False, strip=False, widget=forms.PasswordInput(render_value=False),
            help_text="Secret, write-only: set — leave blank to keep it." if secret_set
            else "Secret, write-only: not set.",
        )
    if field.kind == "bool":
        return forms.TypedChoiceField(
            label=label, required=False, choices=[("", "Default"), ("true", "Yes"), ("false", "No")],
            coerce=lambda value: value == "true", empty_value=None,
        )
    if field.kind == "int":
        return forms.IntegerField(label=label, required=False)
    if field.choices:
        return forms.ChoiceField(
            label=label, required=False, choices=[("", "Default"), *((choice, choice) for choice in field.choices)],
        )
    help_text = {"url": "An http(s) URL.", "email": "An e-mail address."}.get(field.kind, "")
    return forms.CharField(label=label, required=False, strip=True, help_text=help_text)


class DestinationForm(forms.Form):
    """A destination of one channel: its name (when added), description, enabled, and the channel's fields."""

    name = forms.CharField(
        label="Name", max_length=64, help_text="Letters, digits, - and _; it cannot be changed later.",
    )
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea(attrs={"rows": 2}))
    enabled = forms.BooleanField(
        label="Enabled", required=False, initial=True,
        help_text="A disabled destination takes no new notifications and holds its waiting ones.",
    )

    def __init__(
        self, *args: Any, channel: str, secrets_set: Iterable[str] = (), adding: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.channel = channel
        self.declared = notifiers()[channel].fields
        self.secrets_set = set(secrets_set)
        if not adding:
            del self.fields["name"]
        for field in self.declared:
            if field.kind == "bool" and isinstance(self.initial.get(field.name), bool):
                self.initial[field.name] = "true" if self.initial[field.name] else "false"
        for field in self.declared:
            self.fields[field.name] = config_form_field(field, field.name in self.secrets_set)
            if field.secret and field.name in self.secrets_set:
                self.fields[field.name + CLEAR_SUFFIX] = forms.BooleanField(
                    label=f"Clear {_field_label(field.name).lower()}", required=False,
                )

    def config_fields(self) -> list[dict[str, Any]]:
        """The channel's fields as the template lays them out: each with its Clear box if it has one."""
        return [
            {"field": self[field.name], "clear": self[field.name + CLEAR_SUFFIX]
             if field.name + CLEAR_SUFFIX in self.fields else None}
            for field in self.declared
        ]

    def config(self) -> dict[str, Any]:
        """The config as operations.destinations takes it: a secret left blank is left out (kept), one whose Clear
        box is ticked is "" (cleared); any other field is given, blank as "" (not set)."""
        config: dict[str, Any] = {}
        for field in self.declared:
            value = self.cleaned_data.get(field.name)
            if field.secret:
                if self.cleaned_data.get(field.name + CLEAR_SUFFIX):
                    config[field.name] = ""
                elif value:
                    config[field.name] = value
            else:
                config[field.name] = "" if value is None else value
        return config


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_labels(text: str) -> dict[str, str]:
    """key=value lines as a dict; forms.ValidationError naming the first line that is not one."""
    labels: dict[str, str] = {}
    for number, line in enumerate(_lines(text), start=1):
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise forms.ValidationError(f"line {number} ({line[:40]!r}) is not key=value; {LABELS_HELP}")
        labels[key.strip()] = value.strip()
    return labels


def labels_text(labels: Mapping[str, str]) -> str:
    return "\n".join(f"{key}={value}" for key, value in labels.items())


class RouteForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)
    types = forms.MultipleChoiceField(
        label="Types", required=False, choices=EventType.choices, widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any type.",
    )
    severities = forms.MultipleChoiceField(
        label="Severities", required=False, choices=Severity.choices, widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any severity (an alert without severity matches only then).",
    )
    certificate_ids = forms.CharField(
        label="Certificate ids", required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Globs, one per line (* ? [abc], case-sensitive), e.g. mc-pay-*. Empty: any certificate.",
    )
    labels = forms.CharField(
        label="Labels", required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One per line as key=value; the value may be a glob (env=prod*). Empty: any labels.",
    )
    destinations = forms.MultipleChoiceField(
        label="Destinations", required=False, help_text="Where a matching alert goes (Ctrl or ⌘ to choose several).",
    )
    continue_matching = forms.BooleanField(
        label="Continue", required=False, help_text="After a match, keep evaluating the routes below.",
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)
    is_default = forms.BooleanField(
        label="Default route", required=False,
        help_text="Takes every alert no other route matched; its criteria stay empty. At most one.",
    )

    def __init__(self, *args: Any, destination_names: Iterable[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        destinations = self.fields["destinations"]
        assert isinstance(destinations, forms.MultipleChoiceField)
        destinations.choices = [(name, name) for name in destination_names]
        destinations.widget.attrs["size"] = min(8, max(3, len(destinations.choices)))

    def clean_labels(self) -> dict[str, str]:
        return parse_labels(self.cleaned_data["labels"])

    def match(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "types": data["types"], "severities": data["severities"],
            "certificate_ids": _lines(data["certificate_ids"]), "labels": data["labels"],
        }


def route_initial(route: Any, destinations: Iterable[str]) -> dict[str, Any]:
    match = route.match if isinstance(route.match, dict) else {}
    return {
        "name": route.name, "types": match.get("types", []), "severities": match.get("severities", []),
        "certificate_ids": "\n".join(match.get("certificate_ids", [])), "labels": labels_text(match.get("labels", {})),
        "destinations": list(destinations), "continue_matching": route.continue_matching, "enabled": route.enabled,
        "is_default": route.is_default,
    }


class TryAlertForm(forms.Form):
    """An alert to evaluate the routes for (POST /api/v1/routes/test's fields that routes match on)."""

    type = forms.ChoiceField(label="Type", choices=EventType.choices)
    severity = forms.ChoiceField(label="Severity", required=False, choices=[("", "None"), *Severity.choices])
    certificate_id = forms.CharField(label="Certificate id", required=False, max_length=255)
    labels = forms.CharField(
        label="Labels", required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text=LABELS_HELP,
    )

    def clean_labels(self) -> dict[str, str]:
        return parse_labels(self.cleaned_data["labels"])


# Where a refusal's field names (operations' keys) are shown on these forms.
REFUSAL_FIELDS = {
    "match.types": "types", "match.severities": "severities", "match.certificate_ids": "certificate_ids",
    "match.labels": "labels",
}


def show_refusal(form: forms.Form, refusal: InvalidInput) -> None:
    """Put each message of an operation's refusal on the field it names (config.url → url, match.labels → labels),
    or above the form when no field of it is named."""
    for key, message in refusal.errors.items():
        name = REFUSAL_FIELDS.get(key, key.removeprefix("config."))
        form.add_error(name if name in form.fields else None, message if name in form.fields else f"{key}: {message}")
