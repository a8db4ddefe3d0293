"""The chat app in a browser, at /web: each browser tab gets its own `qa chat` process, driven
by textual-serve's AppService over a websocket, and drawn by its textual.js terminal.

textual-serve brings its own aiohttp server; its process bridge and its browser assets are used
here instead, inside the API's server, so the page shares the API's port and safety rules (the
token, loopback Host names, same-origin websockets). Nothing is fetched from the network: the page
uses the font textual-serve ships rather than a web font service.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

# The page of textual-serve's templates/app_index.html (MIT licence), without its web font link
# and start dialogs: the terminal, and a note when the app has quit.
PAGE = """<!DOCTYPE html>
<html>
  <head>
    <meta charset="utf-8">
    <title>{title}</title>
    <link rel="stylesheet" href="{static}css/xterm.css">
    <script src="{static}js/textual.js"></script>
    <style>
      @font-face {{ font-family: "Roboto Mono"; font-style: normal;
        src: url("{static}fonts/RobotoMono-VariableFont_wght.ttf") format("truetype"); }}
      @font-face {{ font-family: "Roboto Mono"; font-style: italic;
        src: url("{static}fonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype"); }}
      html, body {{ margin: 0; height: 100%; background: #0c181f; }}
      body .textual-terminal {{ opacity: 0; transition: opacity 0.3s ease-out; }}
      body.-first-byte .textual-terminal {{ opacity: 1; }}
      .closed {{ display: none; color: #eee; font-family: "Roboto Mono", monospace;
        position: absolute; inset: 0; align-items: center; justify-content: center; }}
      body.-closed .closed {{ display: flex; }}
      .closed a {{ color: #ac5af4; margin-left: 1em; }}
    </style>
  </head>
  <body>
    <div class="closed">The chat app has quit. <a href="">Start it again</a></div>
    <div id="terminal" class="textual-terminal" data-session-websocket-url="{socket}"
         data-font-size="{font_size}"></div>
  </body>
</html>
"""


def static_path() -> Path:
    import textual_serve

    return Path(textual_serve.__file__).resolve().parent / "static"


def web_routes(command: str) -> list:
    """/web (the page), /web/ws (one app process per connection) and /web/static."""
    from textual_serve.download_manager import DownloadManager

    downloads = DownloadManager()

    async def page(request: Request) -> HTMLResponse:
        scheme = "wss" if request.url.scheme == "https" else "ws"
        host = request.headers.get("host", "127.0.0.1")
        try:
            font_size = max(6, min(int(request.query_params.get("fontsize", "16")), 48))
        except ValueError:
            font_size = 16
        return HTMLResponse(PAGE.format(
            title="qa", static="/web/static/", socket=html.escape(f"{scheme}://{host}/web/ws"),
            font_size=font_size))

    async def socket(websocket: WebSocket) -> None:
        from textual_serve.app_service import AppService

        await websocket.accept()
        closed = False

        async def write_bytes(data: bytes) -> None:
            if not closed:
                await websocket.send_bytes(data)

        async def write_str(data: str) -> None:
            if not closed:
                await websocket.send_text(data)

        async def close() -> None:
            nonlocal closed
            if not closed:
                closed = True
                await websocket.close()

        width = _number(websocket.query_params.get("width"), 80)
        height = _number(websocket.query_params.get("height"), 24)
        service = AppService(command, write_bytes=write_bytes, write_str=write_str, close=close,
                             download_manager=downloads)
        await service.start(width, height)
        try:
            while not closed:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("text") is not None:
                    await _relay(json.loads(message["text"]), service, websocket)
        except (WebSocketDisconnect, RuntimeError, ValueError):
            pass  # the browser went away, or sent what is not an envelope
        finally:
            closed = True
            await service.stop()

    return [
        Route("/web", page),
        WebSocketRoute("/web/ws", socket),
        Mount("/web/static", StaticFiles(directory=static_path()), name="web-static"),
    ]


async def _relay(envelope, service, websocket: WebSocket) -> None:
    """One message of textual.js: keys, a new size, focus, or a ping."""
    if not isinstance(envelope, list) or not envelope:
        return
    kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
    if kind == "stdin" and isinstance(data, str):
        await service.send_bytes(data.encode("utf-8"))
    elif kind == "resize" and isinstance(data, dict):
        await service.set_terminal_size(_number(data.get("width"), 80), _number(data.get("height"), 24))
    elif kind == "ping":
        await websocket.send_text(json.dumps(["pong", data]))
    elif kind == "blur":
        await service.blur()
    elif kind == "focus":
        await service.focus()


def _number(value, default: int) -> int:
    try:
        return max(1, min(int(value), 1000))
    except (TypeError, ValueError):
        return default
