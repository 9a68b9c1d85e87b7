"""certctl's page/per_page envelope: `{"data": [...], "total": N, "page": P, "per_page": PP}`, total counting every
match. The notification list answers one page of notifications.queries.events.list_page (the stored counts, deep
pages read through the index) in that envelope (notifications.serializers.EventPageSerializer); other lists (an
event's attempts) page their queryset the same way here."""
from collections.abc import Sequence
from typing import Any, TypeVar

from django.db.models import QuerySet
from rest_framework import exceptions
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications.queries.events import DEFAULT_PER_PAGE, MAX_PER_PAGE, page_of

_Row = TypeVar("_Row")


def _query_int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise exceptions.ValidationError({name: f"must be a whole number, got {raw[:50]!r}"}) from None


class EnvelopePagination(BasePagination):
    """`{"data": [...], "total": N, "page": P, "per_page": PP}`; total counts every match, not the page."""

    def page_request(self, request: Request) -> tuple[int, int]:
        """The page and per_page the request asks for (per_page is clamped where the page is read)."""
        page = _query_int(request, "page", 1)
        if page < 1:
            raise exceptions.ValidationError({"page": f"must be 1 or more, got {page}"})
        return page, _query_int(request, "per_page", DEFAULT_PER_PAGE)

    def paginate_queryset(
        self, queryset: QuerySet[Any, _Row] | Sequence[_Row], request: Request, view: APIView | None = None
    ) -> list[_Row]:
        assert isinstance(queryset, QuerySet), "the API pages querysets only"
        page, per_page = self.page_request(request)
        self.page, self.per_page = page, min(max(per_page, 1), MAX_PER_PAGE)
        self.total = queryset.count()
        offset = (page - 1) * self.per_page
        if offset >= self.total:
            return []
        return page_of(queryset, offset, self.per_page)

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"data": data, "total": self.total, "page": self.page, "per_page": self.per_page})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
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

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
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
                "description": f"Items per page, default {DEFAULT_PER_PAGE}; values outside 1..{MAX_PER_PAGE} are "
                "clamped.",
                "schema": {"type": "integer", "default": DEFAULT_PER_PAGE},
            },
        ]
