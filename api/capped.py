"""Routes whose request body is read with a byte cap (a setting), so that an oversized body is refused
with 413 before it is held in memory or parsed: the claim routes and the named queries' POST form."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any, ClassVar

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from spinekg.kg.claims.parse import load_json

_UNREAD = object()
MAX_DRAIN = 32 * 1024 * 1024  # the most of a refused body read (and dropped) before answering 413


class CappedRequest(Request):
    """A request whose body is read with a byte cap: 413 as soon as the declared length or the bytes
    received pass it, so that an oversized body is neither held in memory nor parsed."""

    def __init__(self, scope: Scope, receive: Receive, limit: int, setting: str, hint: str) -> None:
        super().__init__(scope, receive)
        self.limit = limit
        self.setting = setting
        self.hint = hint
        self._capped: bytes | None = None
        self._parsed: Any = _UNREAD
        self._received_all = False

    def _too_large(self) -> HTTPException:
        return HTTPException(
            status_code=413,
            detail=f"the request body is larger than {self.limit} bytes{self._setting_note()}; {self.hint}",
        )

    def _setting_note(self) -> str:
        return f" (SPINEKG_{self.setting.upper()})" if self.setting else ""

    async def body(self) -> bytes:
        if self._capped is None:
            declared = self.headers.get("content-length", "")
            if declared.isascii() and declared.isdigit():
                size = int(declared) if len(declared) <= 15 else MAX_DRAIN + 1  # 16 digits: more than any cap
                if size > self.limit:
                    if size <= MAX_DRAIN and "100-continue" not in self.headers.get("expect", "").lower():
                        await self._drain()  # else the client has not sent the body, or it is too much to wait for
                    raise self._too_large()
            chunks: list[bytes] = []
            size = 0
            async with contextlib.aclosing(self._chunks()) as arriving:
                async for chunk in arriving:
                    size += len(chunk)
                    if size > self.limit:
                        await self._drain()
                        raise self._too_large()
                    chunks.append(chunk)
            self._capped = b"".join(chunks)
        return self._capped

    async def _chunks(self) -> AsyncGenerator[bytes, None]:
        """The body as it arrives (each ASGI message once; nothing kept here)."""
        while not self._received_all:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            if message["type"] == "http.request":
                self._received_all = not message.get("more_body", False)
                if message.get("body"):
                    yield message["body"]

    async def _drain(self) -> None:
        """Read and drop the rest of a refused body (at most MAX_DRAIN bytes, nothing kept), so that a
        client that sends its whole body before it reads the answer (urllib, requests) gets the 413
        rather than a connection reset by the server closing a socket with unread data."""
        drained = 0
        with contextlib.suppress(ClientDisconnect):
            async with contextlib.aclosing(self._chunks()) as arriving:
                async for chunk in arriving:
                    drained += len(chunk)
                    if drained > MAX_DRAIN:
                        return

    async def json(self) -> Any:
        """The body as JSON, read once (kg's reader: an undecodable body is a 422 naming ``body``)."""
        if self._parsed is _UNREAD:
            self._parsed = load_json(await self.body(), field="body")
        return self._parsed


class CappedRoute(APIRoute):
    """A route whose body is capped by the setting named in ``setting`` (read from the app's settings).
    With ``parse`` the body is also parsed here, before FastAPI validates it, so that a body that is
    not JSON gets the API's 422 naming ``body`` (FastAPI would answer a bare 400 to some of them)."""

    setting: ClassVar[str] = "max_claim_bytes"
    parse: ClassVar[bool] = False
    hint: ClassVar[str] = "send a smaller body"
    fixed_limit: ClassVar[int | None] = None  # a cap of the route's own instead of a setting

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        setting, parse, hint, fixed = self.setting, self.parse, self.hint, self.fixed_limit

        async def capped(request: Request) -> Response:
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media and media != "application/json" and not media.endswith("+json"):
                # a browser's "simple" cross-origin POST (text/plain, a form) must not reach the handler
                raise HTTPException(415, detail=f"send the body as application/json, not {media[:60]}")
            limit = fixed or int(getattr(request.app.state.settings, setting))
            capped_request = CappedRequest(request.scope, request.receive, limit, "" if fixed else setting, hint)
            try:
                if parse and await capped_request.body():
                    await capped_request.json()  # small (capped) and fast: orjson
                return await handler(capped_request)
            except ClientDisconnect:  # the client went away while sending: nobody to answer, nothing to log
                return Response(status_code=400)

        return capped
