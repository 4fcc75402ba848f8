"""Run the server process: open the store, choose TLS, serve with uvicorn."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

import uvicorn

from plantwarden.accounts import services as accounts
from plantwarden.core.db import describe_url
from plantwarden.core.listen import listening_socket
from plantwarden.core.runtime import Runtime
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.web.app import create_app
from plantwarden.web.settings import ServerSettings
from plantwarden.web.tls import ClientCertificateProtocol, TLSFiles, asking_for_client_certificates, tls_for

log = logging.getLogger(__name__)


def run_server(runtime: Runtime) -> None:
    """Serve until SIGINT/SIGTERM. Refuses to start on a store that is not at the head revision."""
    server = runtime.settings[ServerSettings]
    tls = tls_for(server, runtime.core.data_path)
    store = runtime.ready_store()
    app = create_app(runtime.settings, store, tls=tls is not None)
    scheme = "https" if tls else "http"
    log.info("store %s", describe_url(store.engine.url))
    sock = listening_socket(server.host, server.port)
    log.info("serving the console at %s://%s:%d/", scheme, _url_host(server.host), server.port)
    with store.transaction() as session:
        if not accounts.list_users(session):
            log.warning(
                "no users yet: create the first administrator with "
                "`plantwarden user add NAME --role admin --site SITE` (it prints a one-time password)"
            )
    # What start-up made (modules, the mappers, the app and its templates) lives as long as the
    # process: out of the collector's sight, a full collection takes ~14 ms instead of 110-140
    # ms, which every few requests of a large console page used to wait for (bench console).
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        app,
        host=server.host,
        port=server.port,
        ssl_certfile=str(tls.cert) if tls else None,
        ssl_keyfile=str(tls.key) if tls else None,
        log_config=None,
        server_header=False,
        proxy_headers=False,
        **client_certificates(tls, runtime.core.data_path),
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises Ctrl-C after its clean shutdown; that is a normal stop
    finally:
        runtime.close()
    log.info("server stopped")


def client_certificates(tls: TLSFiles | None, data_dir: Path) -> dict[str, Any]:
    """The uvicorn options that make TLS clients' certificates reach the routes (EST's
    simplereenroll), when the server speaks TLS and a platform CA exists; none otherwise, and the
    server behaves as it always did. A CA made while the server runs takes effect at its restart."""
    directory = pki_directory(data_dir)
    if tls is None or not CertificateAuthority.exists(directory):
        return {}
    chain = CertificateAuthority.load(directory).chain_pem()
    log.info("TLS clients may present a certificate of the platform CA (%s)", directory)
    return {"http": ClientCertificateProtocol, "ssl_context_factory": asking_for_client_certificates(chain)}


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
