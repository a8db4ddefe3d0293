"""Helpers for the server tests: a real uvicorn server in a thread, and raw HTTP requests (which
keep a path's encoding exactly as written)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from contextlib import contextmanager


@contextmanager
def running(app, host: str = "127.0.0.1"):
    """``app`` served by uvicorn on a free port of ``host``; yields (host, port)."""
    import uvicorn

    from qa.serve.run import listening_socket

    sock = listening_socket(host, 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    try:
        yield host, port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def request(address, method: str, path: str, body=None, headers=None, timeout: float = 60):
    """(status, headers, body bytes) of one request, the path sent exactly as given."""
    host, port = address
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), data


def server_sent_events(data: bytes) -> list[tuple[str | None, str]]:
    """(event, data) of each event of an event stream; comments are left out."""
    events = []
    for block in data.decode("utf-8").split("\n\n"):
        name, lines = None, []
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                lines.append(line[len("data: "):])
        if lines:
            events.append((name, "\n".join(lines)))
    return events
