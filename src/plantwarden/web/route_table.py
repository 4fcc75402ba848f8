"""The route table: every route of the server with the permission it declares."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from plantwarden.core.access import declared_permission


@dataclass(frozen=True)
class RouteEntry:
    methods: tuple[str, ...]
    path: str
    permission: str | None  # None: the route declares nothing (the suite refuses that)
    name: str


def route_table(app: FastAPI) -> list[RouteEntry]:
    """Every API and console route (static files and the OpenAPI document are public)."""
    return sorted(_walk(app.routes, ""), key=lambda e: (e.path, e.methods))


def _walk(routes: Iterable[Any], prefix: str) -> Iterator[RouteEntry]:
    for route in routes:
        if isinstance(route, APIRoute):
            methods = tuple(sorted(set(route.methods or ()) - {"HEAD"}))
            yield RouteEntry(methods, prefix + route.path, declared_permission(route), route.name)
        elif hasattr(route, "original_router"):  # an included router (FastAPI keeps them nested)
            yield from _walk(route.original_router.routes, prefix + route.include_context.prefix)
