"""What the API refuses before a route sees the request.

A body over the size limit gets 413: Content-Length is checked first, but a client can lie or
stream chunks without one, so the bytes actually received are counted too. A URL with a NUL
character gets 422: PostgreSQL text cannot hold one, so it would fail in the database."""

from __future__ import annotations

import os
from urllib.parse import parse_qsl

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def max_body_bytes_from_env() -> int:
    raw = os.environ.get("TEKIL_MAX_BODY_BYTES", "")
    return int(raw) if raw.strip() else DEFAULT_MAX_BODY_BYTES


class BodyTooLarge(HTTPException):
    # An HTTPException, so that FastAPI passes it through from the body read (anything else
    # it turns into a 400) to the one handler that answers problem+json.
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("the body size limit is a number of bytes, 0 or more")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            # Raised where no exception handler sees it (a body read outside a route).
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(self.max_bytes)
        response = problem(
            413,
            "Content too large",
            str(error.detail),
            kind="content-too-large",
            instance=scope.get("path"),
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


class NoNulInUrl:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            errors = _nul_errors(scope)
            if errors:
                fields = ", ".join(e["field"] for e in errors)
                response = problem(
                    422,
                    "Invalid input",
                    f"the request has invalid fields: {fields}",
                    kind="invalid-input",
                    instance=scope["path"].replace("\x00", "\\u0000"),
                    errors=errors,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _nul_errors(scope: Scope) -> list[dict[str, str]]:
    message = "must not contain the NUL character (\\u0000)"
    errors = []
    if "\x00" in scope["path"]:
        errors.append({"field": "path", "in": "path", "message": message})
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        for name, value in pairs:
            if "\x00" in name or "\x00" in value:
                field = name.replace("\x00", "\\u0000")
                errors.append({"field": field, "in": "query", "message": message})
    return errors
