"""What a request may carry: input from the network is hostile. Bodies have a size limit, and no
text of the path, the query or a form holds a NUL character."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plantwarden.core.errors import InvalidInput

DEFAULT_MAX_BODY = 1024 * 1024
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class BodySizeLimit:
    """Answer 413 (in the one error model) for a body over `max_bytes`, by its declared length or
    by what actually arrives; the application never sees the excess."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        body, more = [], True
        received = 0
        while more:  # read the whole body first (at most max_bytes), then replay it
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await self._refuse(send)
                return
            body.append(chunk)
            more = message.get("more_body", False)
        replay = [{"type": "http.request", "body": b"".join(body), "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)

    async def _refuse(self, send: Send) -> None:
        message = f"the request body is larger than {self.max_bytes} bytes"
        body = json.dumps({"error": {"code": "body_too_large", "message": message, "details": {}}}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def refuse_nul(request: Request) -> None:
    """A dependency of every route (`app.py`): a NUL character (`%00`) in the path, a query
    parameter or a form field is invalid input (422) naming where it is. PostgreSQL holds no text
    with one (a query or a write with it fails: a 500), and no name, filter or note needs one."""
    if "\x00" in request.scope["path"]:
        raise InvalidInput("the path holds a NUL character (%00), which no name may hold")
    fields = [("query parameter", request.query_params.multi_items())]
    if request.headers.get("content-type", "").startswith(FORMS):
        form = await request.form()
        fields.append(("form field", [(name, v) for name, v in form.multi_items() if isinstance(v, str)]))
    for kind, items in fields:
        for name, value in items:
            if "\x00" in name or "\x00" in value:
                raise InvalidInput(
                    f"{kind} {name[:40]!r} holds a NUL character (%00), which no value may hold"
                )
