"""Who asks for a change, recorded on every operator action."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Who asks for a change, and through which interface (api, ui, admin, cli, mcp)."""

    name: str
    source: str
