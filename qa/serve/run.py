"""Starting the HTTP server (uvicorn) with the safety rules of binding: a loopback address by
default; any other address only with a token."""

from __future__ import annotations

import socket
import sys

from qa.engine import Engine
from qa.errors import QAError
from qa.serve.guard import is_loopback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def check_binding(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token."""
    if token is not None and not token.strip():
        raise QAError("the token is empty; give one with --token TOKEN or $QA_TOKEN")
    if not is_loopback(host) and not token:
        raise QAError(f"listening on {host} lets other machines in: give a token with --token "
                      "TOKEN (or $QA_TOKEN), which every request must then send")


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound here so that a port in use is one line, not a log."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise QAError(f"cannot listen on {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise QAError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(engine: Engine, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          token: str | None = None, web: bool = False, quiet: bool = False) -> None:
    """Answer HTTP requests over ``engine`` until interrupted."""
    import uvicorn

    from qa.serve.http import create_app

    check_binding(host, token)
    sock = listening_socket(host, port)
    url = url_of(sock, host)
    app = create_app(engine, token=token, web=web)
    print(f"qa: serving {engine.corpus} on {url} (API: {url}/openapi.json"
          + (f"; chat app: {url}/web" + ("?token=TOKEN" if token else "") if web else "")
          + "); Ctrl+C stops", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="warning" if quiet else "info", server_header=False,
                            access_log=not quiet, timeout_graceful_shutdown=3)
    uvicorn.Server(config).run(sockets=[sock])
