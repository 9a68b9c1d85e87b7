"""The MCP tools' arguments for the list filters, declared by the FilterSet alone (notifications.filtersets
.filter_options): the SDK reads a tool's arguments, and their JSON schema, from the tool function's signature, so a
tool that selects events is given a signature built from the FilterSet's declarations."""
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, Literal

from mcp.types import CallToolResult
from pydantic import Field

from notifications.filtersets import ISO_TIME_PATTERN, FilterOption, filter_options, filters_given

Tool = Callable[..., Awaitable[CallToolResult]]


def filter_argument(declared: FilterOption) -> Any:
    """The type of the argument for one filter: optional, its choices or its length and pattern, its help as the
    description. The FilterSet judges the value when it selects."""
    kind: Any = Literal.__getitem__(declared.choices) if declared.choices else str
    constraints: dict[str, Any] = {"description": declared.help}
    if declared.max_length is not None:
        constraints["max_length"] = declared.max_length
    if declared.time:
        constraints["pattern"] = ISO_TIME_PATTERN
    return Annotated.__class_getitem__((kind | None, Field(**constraints)))  # type: ignore[attr-defined]


def offering_filters(excluded: Iterable[str] = ()) -> Callable[[Tool], Tool]:
    """A tool `tool(filters, **arguments)` offered with one optional argument per list filter (but `excluded`) after
    its own arguments; the filters given reach it as {name: value}, without None and ""."""
    declared = filter_options(excluded)

    def offer(tool: Tool) -> Tool:
        own = [parameter for name, parameter in inspect.signature(tool).parameters.items() if name != "filters"]
        offered = [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=filter_argument(f))
            for f in declared
        ]

        async def with_filters(**arguments: Any) -> CallToolResult:
            filters = filters_given({f.name: arguments.pop(f.name, None) for f in declared})
            return await tool(filters, **arguments)

        parameters = [*own, *offered]
        with_filters.__name__, with_filters.__doc__ = tool.__name__, tool.__doc__
        with_filters.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            parameters, return_annotation=CallToolResult
        )
        with_filters.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": CallToolResult}
        return with_filters

    return offer
