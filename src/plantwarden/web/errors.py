"""One error model: domain errors map to HTTP statuses in one table; JSON for the API,
a page for the console, plain text where a protocol asks for it (EST)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from plantwarden.accounts.errors import AuthenticationFailed, HashingBusy, LoginThrottled, SetupRequired
from plantwarden.core.errors import (
    BackupError,
    ConfigurationError,
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    PlantwardenError,
    StoreNotReady,
)

log = logging.getLogger(__name__)

# The one table from error classes to HTTP statuses; a subclass takes its nearest ancestor's row.
STATUS_BY_ERROR: dict[type[PlantwardenError], int] = {
    NotAuthenticated: 401,
    AuthenticationFailed: 401,
    LoginThrottled: 429,
    HashingBusy: 503,
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    PermissionDenied: 403,
    BackupError: 400,
    StoreNotReady: 503,
    ConfigurationError: 500,
    PlantwardenError: 500,
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_input",
    429: "too_many_requests",
    503: "unavailable",
}


def status_for(error: PlantwardenError) -> int:
    """The HTTP status of a domain error, by its nearest class in `STATUS_BY_ERROR`."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def wants_json(request: Request) -> bool:
    """API and probe paths answer JSON; the console answers pages unless JSON is asked for."""
    path = request.url.path
    if path.startswith("/api/") or path in {"/healthz", "/readyz"}:
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of every error the API returns."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def install_error_handlers(
    app: FastAPI, templates: Jinja2Templates, *, plain_text_under: tuple[str, ...] = ()
) -> None:
    """Register the handlers that turn every failure into the one error model. Paths under
    `plain_text_under` answer its message as plain text (EST clients read no JSON or page)."""

    def respond(
        request: Request, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> Response:
        if request.url.path.startswith(plain_text_under):
            return PlainTextResponse(message.rstrip() + "\n", status_code=status)
        if wants_json(request):
            return JSONResponse(error_body(code, message, details), status_code=status)
        context = {"status": status, "code": code, "message": message}
        page: HTMLResponse = templates.TemplateResponse(request, "error.html", context, status_code=status)
        return page

    async def on_domain_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, PlantwardenError)
        setup_page = getattr(request.state, "setup_page", None)
        if isinstance(error, SetupRequired) and setup_page and not wants_json(request):
            return RedirectResponse(setup_page, status_code=303)
        if isinstance(error, NotAuthenticated) and not wants_json(request):
            target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="")
            return RedirectResponse(f"/login?next={target}", status_code=303)
        status = status_for(error)
        if status >= 500:
            log.error("%s on %s %s: %s", error.code, request.method, request.url.path, error.message)
        response = respond(request, status, error.code, error.message, error.details)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="plantwarden"'
        if isinstance(error, LoginThrottled):
            response.headers["Retry-After"] = str(max(1, round(error.retry_after_seconds)))
        return response

    async def on_validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        problems = [{"location": list(e.get("loc", ())), "problem": e.get("msg", "")} for e in error.errors()]
        return respond(request, 422, "invalid_input", "the request is not valid", {"problems": problems})

    async def on_http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        code = HTTP_CODES.get(error.status_code, "http_error")
        message = error.detail if isinstance(error.detail, str) else "request failed"
        response = respond(request, error.status_code, code, message)
        for name, value in (error.headers or {}).items():
            response.headers[name] = value
        return response

    async def on_unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return respond(
            request, 500, "internal_error", "an internal error occurred; the server log has the details"
        )

    app.add_exception_handler(PlantwardenError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
