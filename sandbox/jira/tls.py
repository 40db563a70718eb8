"""HTTPS for the sandbox: a throwaway certificate authority and a 127.0.0.1 certificate.

    files = make_tls_files(tmp_path)
    with ServerThread(app, ssl_certfile=str(files.cert), ssl_keyfile=str(files.key)) as s:
        JIRA(server=s.url, basic_auth=(...), options={"verify": str(files.ca)})

The CA is made fresh by ``trustme`` on every call; clients trust it through ``files.ca``
(never the system store).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # the server certificate chain (PEM)
    key: Path  # its private key (PEM)
    ca: Path  # the CA certificate clients must trust (PEM)


def make_tls_files(
    directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> TlsFiles:
    """Write a new CA and a server certificate for ``hosts`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert(*hosts)
    files = TlsFiles(directory / "server.pem", directory / "server.key", directory / "ca.pem")
    files.cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(files.key))
    ca.cert_pem.write_to_path(str(files.ca))
    return files
