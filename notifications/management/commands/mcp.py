import ipaddress

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications.mcp.server import build_server, identity_from_settings

LOOPBACK_NAMES = {"localhost"}


def parse_host_port(value: str) -> tuple[str, int]:
    """'127.0.0.1:8765', 'localhost:8765' or '[::1]:8765' -> (host, port)."""
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise CommandError(
            f"--http {value!r} is not HOST:PORT; use e.g. --http 127.0.0.1:8765 (IPv6: --http [::1]:8765)", returncode=2
        )
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Command(BaseCommand):
    help = (
        "Serve the MCP server for AI assistants: on stdio by default, or over streamable HTTP with "
        "--http HOST:PORT (endpoint /mcp). Writes (mark read, requeue) need CERTCTL_MCP_ALLOW_WRITES=true; with "
        "CERTCTL_API_KEY it acts as that named key, and requeueing needs it to be an admin key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--http", metavar="HOST:PORT",
            help="Serve the streamable HTTP transport at http://HOST:PORT/mcp instead of stdio. "
            "HOST must be a loopback address unless --allow-remote is given.",
        )
        parser.add_argument(
            "--allow-remote", action="store_true",
            help="Allow --http on a non-loopback address. The MCP endpoint has no authentication of its own: "
            "only do this behind a proxy that authenticates.",
        )

    def handle(self, *args: object, http: str | None = None, allow_remote: bool = False, **options: object) -> None:
        try:
            identity = identity_from_settings()
        except ImproperlyConfigured as exc:
            raise CommandError(f"MCP server not started: {exc}") from None
        server = build_server(identity)
        if not http:
            # stdout carries the protocol: nothing else may be written to it.
            server.run("stdio")
            return
        host, port = parse_host_port(http)
        if not is_loopback(host):
            if not allow_remote:
                raise CommandError(
                    f"refusing to serve MCP on {host}: it is not a loopback address and the MCP endpoint has no "
                    "authentication. Use --http 127.0.0.1:PORT, or add --allow-remote if a proxy in front of it "
                    "authenticates clients.",
                    returncode=2,
                )
            self.stderr.write(f"warning: MCP on {host}:{port} is reachable from the network without authentication")
        writes = "enabled" if settings.CERTCTL_MCP_ALLOW_WRITES else "disabled (CERTCTL_MCP_ALLOW_WRITES)"
        display_host = f"[{host}]" if ":" in host else host
        acting_as = (
            f"key {identity.key_name!r}" + ("" if identity.admin else " (read-only)") if identity.key_name else '"mcp"'
        )
        self.stderr.write(
            f"MCP streamable HTTP on http://{display_host}:{port}/mcp, writes {writes}, acting as {acting_as}"
        )
        server.run("streamable-http", host=host, port=port)
