"""certctl's page/per_page envelope (the list's filters are notifications.filtersets)."""
from rest_framework import exceptions
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

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


class EnvelopePagination(BasePagination):
    """`{"data": [...], "total": N, "page": P, "per_page": PP}`; total counts every match, not the page."""

    def paginate_queryset(self, queryset, request, view=None):
        page = _query_int(request, "page", 1)
        if page < 1:
            raise exceptions.ValidationError({"page": f"must be 1 or more, got {page}"})
        per_page = min(max(_query_int(request, "per_page", DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
        self.page, self.per_page = page, per_page
        self.total = queryset.count()
        offset = (page - 1) * per_page
        if offset >= self.total:
            return []
        return list(queryset[offset : offset + per_page])

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
