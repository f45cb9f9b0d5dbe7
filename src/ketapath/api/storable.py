"""Refuse text that no database column can hold, before any route sees it.

PostgreSQL text and JSONB cannot contain the NUL character (U+0000), and neither database
driver can encode a lone UTF-16 surrogate (U+D800-U+DFFF, which JSON can spell as "\\ud800").
Such text is never a clinical value: a request that carries it in its path, its query or its
body (JSON or form) is answered 422 naming where, instead of failing in the database (500).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi.encoders import jsonable_encoder
from starlette.responses import HTMLResponse, JSONResponse, Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def unstorable(text: str) -> bool:
    """Whether ``text`` holds a character no database column can store."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _in_data(value: Any) -> bool:
    if isinstance(value, str):
        return unstorable(value)
    if isinstance(value, dict):
        return any(_in_data(k) or _in_data(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_in_data(item) for item in value)
    return False


def _in_form(body: bytes) -> bool:
    text = body.decode("utf-8", errors="replace")
    return any(unstorable(k) or unstorable(v) for k, v in parse_qsl(text, keep_blank_values=True))


def _in_body(content_type: str, body: bytes) -> bool:
    if not body:
        return False
    if content_type.startswith("application/x-www-form-urlencoded"):
        return _in_form(body)
    if "json" in content_type:
        try:
            return _in_data(json.loads(body))
        except (ValueError, RecursionError):
            return False  # not JSON: the route's own parsing refuses it
    return b"\x00" in body


class StorableText:
    """ASGI middleware: 422 for a path, query or body with text no column can store."""

    def __init__(self, app: ASGIApp, *, api_prefix: str) -> None:
        self.app = app
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = self._in_url(scope)
        body, more = b"", True
        messages: list[Message] = []
        if where is None and scope.get("method") in ("POST", "PUT", "PATCH", "DELETE"):
            while more:
                message = await receive()
                messages.append(message)
                body += message.get("body", b"")
                more = message.get("more_body", False) and message["type"] == "http.request"
            headers = dict(scope.get("headers") or [])
            content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
            if _in_body(content_type, body):
                where = "body"
        if where is not None:
            await self._refuse(scope, where)(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay if messages else receive, send)

    @staticmethod
    def _in_url(scope: Scope) -> str | None:
        if unstorable(str(scope.get("path", ""))):
            return "path"
        query = scope.get("query_string", b"").decode("latin-1")
        if any(unstorable(k) or unstorable(v) for k, v in parse_qsl(query, keep_blank_values=True)):
            return "query"
        return None

    def _refuse(self, scope: Scope, where: str) -> Response:
        message = (
            f"{where}: contains a character no record can hold (NUL, or a lone surrogate); "
            "remove it and send again."
        )
        if str(scope.get("path", "")).startswith(self.api_prefix + "/"):
            body = {"detail": message, "field": where}
            return JSONResponse(jsonable_encoder(body), status_code=422)
        words = {"path": "The address", "query": "The address", "body": "What was entered"}
        return HTMLResponse(
            '<!doctype html><html lang="en"><title>Please check what was entered</title>'
            f"<h1>Please check what was entered</h1><p>{words.get(where, 'The request')} "
            "contains a character no record can hold (a NUL, or a lone surrogate): remove it "
            "and send again.</p>"
            '<p><a href="/patients">Back to the patients</a></p>',
            status_code=422,
        )
