"""certctl's page/per_page envelope (the list's filters are notifications.filtersets)."""
from django.db.models import QuerySet
from rest_framework import exceptions
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from notifications.filtersets import FILTER_NAMES
from notifications.models import NotificationEvent
from notifications.queries import counts

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500


def _query_int(request, name, default):
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise exceptions.ValidationError({name: f"must be a whole number, got {raw[:50]!r}"}) from None


def page_of(queryset: QuerySet, offset: int, limit: int) -> list:
    """queryset[offset:offset + limit], paying the offset in the index only: the page's keys first (an
    index-only scan skips the rows before it), then the rows of those keys alone."""
    keys = list(queryset.values_list("pk", flat=True)[offset : offset + limit])
    return list(queryset.filter(pk__in=keys)) if keys else []


class EnvelopePagination(BasePagination):
    """`{"data": [...], "total": N, "page": P, "per_page": PP}`; total counts every match, not the page."""

    def paginate_queryset(self, queryset, request, view=None):
        page = _query_int(request, "page", 1)
        if page < 1:
            raise exceptions.ValidationError({"page": f"must be 1 or more, got {page}"})
        per_page = min(max(_query_int(request, "per_page", DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
        self.page, self.per_page = page, per_page
        self.total = self._count(queryset, request, view)
        offset = (page - 1) * per_page
        if offset >= self.total:
            return []
        return page_of(queryset, offset, per_page)

    @staticmethod
    def _count(queryset: QuerySet, request, view) -> int:
        """Every match; for the notification list filtered by status, delivery_status, channel or read only, from
        notifications.counts, so that its total is not a count(*) of a year of history on every page."""
        if queryset.model is not NotificationEvent or getattr(view, "action", None) != "list":
            return queryset.count()
        filters = {
            name: request.query_params[name]
            for name in FILTER_NAMES
            if request.query_params.get(name, "") != ""
        }
        total = counts.matching(filters)
        return queryset.count() if total is None else total

    def get_paginated_response(self, data):
        return Response({"data": data, "total": self.total, "page": self.page, "per_page": self.per_page})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["data", "total", "page", "per_page"],
            "properties": {
                "data": schema,
                "total": {"type": "integer", "minimum": 0, "description": "Every match, not just this page."},
                "page": {"type": "integer", "minimum": 1},
                "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "page",
                "in": "query",
                "required": False,
                "description": "Page number, from 1. A page past the end is empty, with the real total.",
                "schema": {"type": "integer", "minimum": 1, "default": 1},
            },
            {
                "name": "per_page",
                "in": "query",
                "required": False,
                "description": f"Items per page, default {DEFAULT_PER_PAGE}; values outside 1..{MAX_PER_PAGE} are clamped.",
                "schema": {"type": "integer", "default": DEFAULT_PER_PAGE},
            },
        ]
