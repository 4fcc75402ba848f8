"""What a request may carry: input from the network is hostile. Bodies have a size limit, no text
of the path, the query, a form or a JSON body holds a NUL character, and an API call names only
query parameters its operation has."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plantwarden.core.errors import InvalidInput

DEFAULT_MAX_BODY = 1024 * 1024
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
JSON_NUL = b"\\u0000"
"""How a NUL is written in JSON text: a raw one is not JSON, so a body without this holds none."""


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
    """A dependency of every route (`app.py`): a NUL character (`%00`, `\\u0000`) in the path, a
    query parameter, a form field or a JSON body is invalid input (422) naming where it is.
    PostgreSQL holds no text with one (a query or a write with it fails: a 500), and no name,
    filter or note needs one. Other bodies (a CSR, a capture) are bytes and may hold any."""
    if "\x00" in request.scope["path"]:
        raise InvalidInput("the path holds a NUL character (%00), which no name may hold")
    fields = [("query parameter", request.query_params.multi_items())]
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body = await request.body()  # read once: the route's own parsing takes it from the request
        if JSON_NUL in body:
            _refuse_nul_in_json(body)
    if content_type.startswith(FORMS):
        form = await request.form()
        fields.append(("form field", [(name, v) for name, v in form.multi_items() if isinstance(v, str)]))
    for kind, items in fields:
        for name, value in items:
            if "\x00" in name or "\x00" in value:
                raise InvalidInput(
                    f"{kind} {name[:40]!r} holds a NUL character (%00), which no value may hold"
                )


def _refuse_nul_in_json(body: bytes) -> None:
    """The body holds the text `\\u0000`: a NUL, unless it is an escaped backslash's (`\\\\u0000`),
    so look at what it decodes to. JSON that does not parse is the route's to refuse, with its own
    message."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return
    for path, text in _texts(document):
        if "\x00" in text:
            where = f"body field {path[:60]!r}" if path else "the body"
            raise InvalidInput(f"{where} holds a NUL character (\\u0000), which no value may hold")


def _texts(document: Any) -> Iterator[tuple[str, str]]:
    """Every string of a JSON document, keys too, with its path (`a.b[2]`); without recursion, so
    any depth json.loads reads is fine."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            yield path, value
        elif isinstance(value, dict):
            for key, item in value.items():
                inner = f"{path}.{key}" if path else key
                yield inner, key
                stack.append((inner, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))


async def refuse_unknown_query(request: Request) -> None:
    """A dependency of every route (`app.py`): a query parameter an API operation does not have is
    invalid input (422) listing those it has. Ignored, a misspelt filter (`?sevrity=critical`)
    would answer as if there were none: every alert. The console's pages are left out (their
    links and forms carry what the pages read)."""
    route = request.scope.get("route")
    path = request.url.path  # the route's own path lacks the prefix of the router that includes it
    if not request.query_params or not isinstance(route, APIRoute) or not path.startswith("/api/"):
        return
    known = _query_names(route)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        names = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise InvalidInput(
            f"{request.method} {path[:80]} has no query parameter {names}"
            f" (its parameters: {', '.join(sorted(known)) or 'none'})"
        )


_QUERY_NAMES = "_plantwarden_query_names"
"""The attribute that keeps a route's query parameters once found (a route is not hashable)."""


def _query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters of `route` and of its dependencies, by the name a caller sends."""
    names: frozenset[str] | None = getattr(route, _QUERY_NAMES, None)
    if names is None:
        found: set[str] = set()
        pending: list[Dependant] = [route.dependant]
        while pending:
            dependant = pending.pop()
            found.update(param.alias for param in dependant.query_params)
            pending.extend(dependant.dependencies)
        names = frozenset(found)
        setattr(route, _QUERY_NAMES, names)
    return names
