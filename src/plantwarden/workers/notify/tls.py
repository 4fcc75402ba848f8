"""TLS client contexts of the targets: the server's certificate and name are always verified."""

from __future__ import annotations

import ssl
from pathlib import Path

from plantwarden.core.errors import ConfigurationError


def client_context(
    ca_file: Path | None, cert_file: Path | None = None, key_file: Path | None = None
) -> ssl.SSLContext:
    """A context for TLS 1.2 or later that trusts `ca_file` (or the system's CAs) and presents
    the client certificate `cert_file` when given."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as error:
        raise ConfigurationError(f"cannot read the CA certificates in {ca_file}: {error}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None:
        try:
            context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
        except (OSError, ssl.SSLError) as error:
            raise ConfigurationError(
                f"cannot load the client certificate {cert_file} "
                f"(key {key_file or 'in the same file'}): {error}"
            ) from None
    return context
