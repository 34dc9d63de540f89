"""The HTTP shell around the routes, as small ASGI wrappers: HEAD answered by the GET route, CORS with
a separate policy for the claim routes (health data), and the plain-text refusals of Starlette's
middlewares turned into the API's JSON error body."""

from __future__ import annotations

from collections.abc import Collection

import orjson
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CLAIMS_PREFIX = "/claims"
# the routes that carry health data (claims, and the procedure records and notes /coding reads): their own CORS policy
HEALTH_DATA_PREFIXES = (CLAIMS_PREFIX, "/coding")
CORS_METHODS = ("GET", "HEAD", "POST", "OPTIONS")
# Response headers a browser client may read besides the safelisted ones (SPARQL result limits, busy).
CORS_EXPOSE = ("X-SPARQL-MaxRows", "Warning", "Retry-After", "Content-Disposition")


class HeadAsGet:
    """Answer HEAD with the GET route's status and headers and no body (RFC 9110 §9.3.2).

    FastAPI registers GET routes for GET only; rather than declare HEAD on every route (and in the
    OpenAPI document), a HEAD request is run as GET and its body dropped. A path without a GET route
    still gets 404 or 405."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class SplitCORS:
    """Starlette's CORSMiddleware with two policies: one for /claims/* and /coding/* (health data) and one
    for everything else.

    With no origins a policy grants nothing: a preflight is refused and no Access-Control-Allow-Origin
    is ever sent, so a browser page on another origin cannot read the answer."""

    def __init__(self, app: ASGIApp, origins: Collection[str], claims_origins: Collection[str]) -> None:
        def policy(allowed: Collection[str], expose: Collection[str]) -> CORSMiddleware:
            return CORSMiddleware(
                app,
                allow_origins=tuple(allowed),
                allow_methods=CORS_METHODS,
                allow_headers=("Accept", "Content-Type"),
                expose_headers=expose,
                max_age=600,
            )

        self.public = policy(origins, CORS_EXPOSE)
        self.claims = policy(claims_origins, ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.public(scope, receive, send)
            return
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        claims = any(path == prefix or path.startswith(prefix + "/") for prefix in HEALTH_DATA_PREFIXES)
        await (self.claims if claims else self.public)(scope, receive, send)


# What Starlette's middlewares answer in plain text, and the request header each answer is about.
_PLAIN_FIELDS = {
    "Invalid host header": "Host",
    "Disallowed CORS origin": "Origin",
    "Disallowed CORS method": "Access-Control-Request-Method",
    "Disallowed CORS headers": "Access-Control-Request-Headers",
    "Disallowed CORS private-network": "Access-Control-Request-Private-Network",
}


def _plain_field(text: str) -> str | None:
    for prefix, field in _PLAIN_FIELDS.items():
        if text.startswith(prefix):
            return field
    return None


class PlainErrorsAsJSON:
    """Rewrite a text/plain error (TrustedHostMiddleware's 400, CORSMiddleware's refused preflight) as
    the API's JSON error body {"detail": ..., "field": ...}; every other response passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] >= 400:
                if Headers(raw=message.get("headers", [])).get("content-type", "").startswith("text/plain"):
                    held = message
                    return
            elif message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                text = b"".join(chunks).decode("utf-8", "replace").strip()
                body = orjson.dumps({"detail": text or "refused", "field": _plain_field(text)})
                headers = MutableHeaders(raw=list(held.get("headers", [])))
                headers["content-type"] = "application/json"
                headers["content-length"] = str(len(body))
                await send({**held, "headers": headers.raw})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            await send(message)

        await self.app(scope, receive, rewrite)
