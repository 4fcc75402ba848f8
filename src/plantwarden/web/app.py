"""The app factory: settings and store in, a FastAPI application out."""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from plantwarden import __version__
from plantwarden.accounts import api as accounts_api
from plantwarden.accounts import services as accounts
from plantwarden.alerts import api as alerts_api
from plantwarden.core.db import Store
from plantwarden.core.settings import Settings
from plantwarden.detection.baselines import api as baselines_api
from plantwarden.devices import api as devices_api
from plantwarden.incidents import api as quarantine_api
from plantwarden.inventory import api as inventory_api
from plantwarden.monitoring import telemetry_api
from plantwarden.pki import api as pki_api
from plantwarden.pki import est as pki_est
from plantwarden.web import (
    baseline_pages,
    console,
    exercise_pages,
    health,
    inventory_pages,
    live,
    login,
    user_pages,
    zone_pages,
)
from plantwarden.web.auth import install_enforcer, may
from plantwarden.web.errors import install_error_handlers
from plantwarden.web.limits import BodySizeLimit, refuse_nul, refuse_unknown_query
from plantwarden.web.security import SecurityHeaders
from plantwarden.zones import api as plant_api

PACKAGE_DIR = Path(__file__).parent
API_PREFIX = "/api/v1"


def create_app(settings: Settings, store: Store, *, tls: bool = False) -> FastAPI:
    """Build the server application around an open store; nothing global, nothing hidden."""
    app = FastAPI(
        title="Plantwarden",
        version=__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(refuse_nul), Depends(refuse_unknown_query)],
    )
    templates = Jinja2Templates(directory=PACKAGE_DIR / "templates")
    templates.env.globals["version"] = __version__
    templates.env.globals["may"] = may  # for links and forms only: the routes decide
    templates.env.globals["live_position"] = lambda: live.position(store)  # where a page's updates start
    app.state.settings = settings
    app.state.store = store
    app.state.templates = templates
    app.add_middleware(SecurityHeaders, tls=tls)
    app.add_middleware(BodySizeLimit)
    install_error_handlers(app, templates, plain_text_under=(pki_est.router.prefix + "/",))
    accounts.configure_for(settings)
    app.state.audit = accounts.audit_log()
    install_enforcer(app, store)
    app.include_router(health.router)
    app.include_router(login.router)
    app.include_router(health.api_router, prefix=API_PREFIX)
    app.include_router(alerts_api.router, prefix=API_PREFIX)
    app.include_router(baselines_api.router, prefix=API_PREFIX)
    app.include_router(inventory_api.router, prefix=API_PREFIX)
    app.include_router(telemetry_api.router, prefix=API_PREFIX)
    app.include_router(plant_api.router, prefix=API_PREFIX)
    app.include_router(accounts_api.router, prefix=API_PREFIX)
    app.include_router(pki_api.router, prefix=API_PREFIX)
    app.include_router(pki_est.router)
    app.include_router(devices_api.router, prefix=API_PREFIX)
    app.include_router(quarantine_api.router, prefix=API_PREFIX)
    app.include_router(console.router)
    app.include_router(inventory_pages.router)
    app.include_router(zone_pages.router)
    app.include_router(baseline_pages.router)
    app.include_router(exercise_pages.router)
    app.include_router(user_pages.router)
    app.include_router(live.router)
    app.mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static")
    return app
