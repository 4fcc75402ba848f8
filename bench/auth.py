"""A token-authenticated GET against the same GET without authentication, in the same run.

Two routes that do the same work (return a small constant document): one declares `PUBLIC`,
the other `Requires("platform:status.read")`, so the difference is exactly the enforcement:
reading the bearer token (prefix lookup, SHA-256, expiry), the compiled policy's decision and
the actor's places. Requests go through the whole ASGI stack (middleware, error handlers) with
an in-process HTTP client, one after another. Target of the issue: the authenticated rate at
least 80 % of the unauthenticated one.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated

import httpx2
from fastapi import Depends, FastAPI
from tests.web_support import server

from plantwarden.core.access import PUBLIC, Actor, Requires


def run(*, quick: bool = False) -> None:
    n = 500 if quick else 5000
    work = Path(tempfile.mkdtemp(prefix="pw-bench-auth-"))
    try:
        for made in server(work):
            made.user("vera", "viewer")
            token = made.token("vera")
            app = made.client.app
            assert isinstance(app, FastAPI)

            @app.get("/api/v1/bench/public", dependencies=[Depends(PUBLIC)])
            def public() -> dict[str, str]:
                return {"status": "ok"}

            @app.get("/api/v1/bench/protected")
            def protected(_: Annotated[Actor, Depends(Requires("platform:status.read"))]) -> dict[str, str]:
                return {"status": "ok"}

            rates = asyncio.run(_measure(app, token, n))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"## auth: {n:,} sequential GETs each, in-process ASGI client")
    print(f"{'GET without authentication (PUBLIC)':54} {rates['public']:>10,.0f} requests/s")
    print(f"{'GET with a bearer token (Requires status.read)':54} {rates['protected']:>10,.0f} requests/s")
    ratio = rates["protected"] / rates["public"]
    print(f"{'authenticated / unauthenticated':54} {ratio:>10.0%}  (target >= 80 %)")


async def _measure(app: object, token: str, n: int) -> dict[str, float]:
    transport = httpx2.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx2.AsyncClient(transport=transport, base_url="http://bench") as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/api/v1/bench/protected", headers=headers)).status_code == 200
        assert (await client.get("/api/v1/bench/protected")).status_code == 401
        rates = {}
        for _round in range(2):  # the second round is the one reported (warm caches)
            for name, extra in (("public", {}), ("protected", headers)):
                started = time.perf_counter()
                for _ in range(n):
                    response = await client.get(f"/api/v1/bench/{name}", headers=extra)
                    assert response.status_code == 200
                rates[name] = n / (time.perf_counter() - started)
        return rates
