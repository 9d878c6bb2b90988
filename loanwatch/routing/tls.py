"""The collector API's optional TLS: a server certificate and key, optionally a client CA.

With ``api_tls_cert_file`` and ``api_tls_key_file`` set, ``routes serve`` serves the API (and
its ``/healthz`` and ``/metrics``) over HTTPS only: a plain-HTTP request on that port is a
failed handshake, never an answer. With ``api_tls_client_ca_file`` too, a client must present
a certificate that CA signed (mutual TLS) before any token is read. TLS 1.2 at least.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from loanwatch.routing.errors import ConfigError


def server_context(
    cert_file: Path | None, key_file: Path | None, client_ca_file: Path | None = None
) -> ssl.SSLContext | None:
    """The API's server context, or None (plain HTTP, the default on loopback)."""
    if cert_file is None and key_file is None:
        if client_ca_file is not None:
            raise ConfigError(
                "LOANWATCH_API_TLS_CLIENT_CA_FILE needs LOANWATCH_API_TLS_CERT_FILE and "
                "LOANWATCH_API_TLS_KEY_FILE (client certificates are checked over TLS only)"
            )
        return None
    if cert_file is None or key_file is None:
        raise ConfigError(
            "LOANWATCH_API_TLS_CERT_FILE and LOANWATCH_API_TLS_KEY_FILE go together: set both"
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert_file), str(key_file))
        if client_ca_file is not None:
            context.load_verify_locations(cafile=str(client_ca_file))
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"collector API TLS: {exc}") from None
    return context
