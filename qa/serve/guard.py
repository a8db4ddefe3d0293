"""The server's safety rules, as one ASGI middleware around every request and websocket:

- with a token, every request must carry it (``Authorization: Bearer TOKEN``; the browser page
  gets it once as ``?token=`` and keeps it in a same-site cookie);
- without one (the server then listens on a loopback address only), the Host header must name
  a loopback address too, so a web page cannot reach the server through a rebound DNS name;
- a websocket must come from a page of this server (its Origin names the Host);
- request bodies are capped.

Errors are JSON: ``{"error": {"message": ..., "type": ..., "status": ...}}``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote, unquote, urlsplit

MAX_BODY_BYTES = 256 * 1024
TOKEN_COOKIE = "qa_token"


def error_body(status: int, message: str, kind: str | None = None) -> bytes:
    """The JSON every error of the server is: one clear message, never a traceback."""
    kind = kind or ("invalid_request_error" if status < 500 else "server_error")
    return json.dumps({"error": {"message": message, "type": kind, "status": status}}).encode()


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1), with or without [ ]."""
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    """The host of a Host header ("127.0.0.1:8765" -> "127.0.0.1", "[::1]:80" -> "::1")."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class TooLarge(Exception):
    """A request body grew past the cap while it was read."""


class Guard:
    """ASGI middleware applying the rules above before ``app`` sees a request."""

    def __init__(self, app, token: str | None = None, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.token = token or None
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            return await self._refuse(scope, receive, send, *refusal)
        if scope["type"] == "http" and self.token and scope["path"] in ("/web", "/web/"):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if query.get("token") and self._token_matches(query["token"][0]):
                return await self._set_cookie(send)
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await self._respond(send, 413, f"the request body is over the limit of "
                                                  f"{self.max_body // 1024} KB")
        return await self._app_with_capped_body(scope, receive, send)

    def _refusal(self, scope, headers) -> tuple[int, str, str] | None:
        """(status, message, the short reason a websocket's close can carry), or None."""
        if self.token is None and not is_loopback(_host_name(headers.get("host", ""))):
            return 403, ("this server answers only requests addressed to a loopback name "
                         "(127.0.0.1, localhost); start it with --token to serve others"), \
                "loopback host names only"
        if scope["type"] == "websocket":
            origin = headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != headers.get("host"):
                message = "a websocket must come from a page of this server"
                return 403, message, message
        if self.token is not None and not self._authorized(scope, headers):
            return 401, ("missing or wrong token: send the header 'Authorization: Bearer TOKEN' "
                         "(the token the server was started with, --token or $QA_TOKEN)"), \
                "missing or wrong token"
        return None

    def _authorized(self, scope, headers) -> bool:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self._token_matches(given.strip()):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header is no token
            return False
        if TOKEN_COOKIE in cookie and self._token_matches(unquote(cookie[TOKEN_COOKIE].value)):
            return True
        # The page's one visit with ?token= (answered with the cookie, in __call__).
        if scope["type"] == "http" and scope["path"] in ("/web", "/web/"):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            return bool(query.get("token")) and self._token_matches(query["token"][0])
        return False

    def _token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode("utf-8"))

    async def _refuse(self, scope, receive, send, status: int, message: str, reason: str) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": reason})
            return
        await self._respond(send, status, message,
                            [(b"www-authenticate", b"Bearer")] if status == 401 else [])

    async def _respond(self, send, status: int, message: str, extra=()) -> None:
        body = error_body(status, message)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), *extra]})
        await send({"type": "http.response.body", "body": body})

    async def _set_cookie(self, send) -> None:
        """The browser page's token, kept in a cookie only this site sends, and out of the URL."""
        cookie = f"{TOKEN_COOKIE}={quote(self.token, safe='')}; Path=/; HttpOnly; SameSite=Strict"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", b"/web"), (b"set-cookie", cookie.encode()),
                                (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    async def _app_with_capped_body(self, scope, receive, send) -> None:
        received = 0
        started = False

        async def capped_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise TooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, tracking_send)
        except TooLarge:
            if not started:
                await self._respond(send, 413, f"the request body is over the limit of "
                                               f"{self.max_body // 1024} KB")
