"""The MCP server for AI assistants (manage.py mcp): certctl's tool names over the same reads and operations as every
other interface, with every string from outside fenced."""
