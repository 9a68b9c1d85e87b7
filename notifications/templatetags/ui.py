"""Template helpers for the operator UI: relative times with the exact time on hover, retry display."""
from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil

from notifications.models import NotificationEvent
from notifications.queries.events import retry_display as retry_text

register = template.Library()


@register.filter
def relative_time(value: datetime | None, placeholder: str = "—") -> SafeString | str:
    """<time> reading "5 minutes ago" / "in 2 minutes", with the exact UTC time as its tooltip."""
    if not value:
        return placeholder
    now = timezone.now()
    if value <= now:
        words = "just now" if (now - value).total_seconds() < 60 else f"{timesince(value, now, depth=2)} ago"
    else:
        words = "in under a minute" if (value - now).total_seconds() < 60 else f"in {timeuntil(value, now, depth=2)}"
    exact = value.astimezone(UTC)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        exact.isoformat(timespec="seconds"),
        exact.strftime("%Y-%m-%d %H:%M:%S UTC"),
        words,
    )


@register.filter
def exact_time(value: datetime | None, placeholder: str = "—") -> SafeString | str:
    if not value:
        return placeholder
    exact = value.astimezone(UTC)
    return format_html(
        '<time datetime="{}">{}</time>', exact.isoformat(timespec="seconds"), exact.strftime("%Y-%m-%d %H:%M:%S UTC")
    )


@register.filter
def retry_display(event: NotificationEvent) -> str:
    return retry_text(event)
