"""Front ends that serve other programs: the HTTP API (``qa serve``), the chat app in a browser
(``qa web``) and the MCP server (``qa mcp``). Thin: the engine and qa.sessions own the logic."""
