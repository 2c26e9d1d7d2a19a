"""``verifier mcp``: the desktop, the browser and an agent's session served over MCP.

The tools an agent sees are registered in ``_registry`` (one entry each, as steps are); the
server (``_serve``) runs every call on the thread that owns the desktop and the browser.
Only :mod:`verifier.mcp.cli` loads without the MCP SDK.
"""

__all__ = ()  # its command line is verifier.mcp.cli; the server loads with the command
