"""HTTPS for the tests: sandboxes served with a throwaway CA, and a relay that counts the
connections clients open to them.

A TLS handshake that fails never reaches a sandbox's request counts (no HTTP request is
ever read), so "the client tried once" is counted one layer down: :class:`ConnectionRelay`
accepts TCP connections on its own port, counts them and relays the bytes to the server.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Self

from starlette.types import ASGIApp

from sandbox.jira.tls import TlsFiles
from sandbox.server import ServerThread

CLIENT_CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
"""The variables through which httpx and requests would trust a CA without billsync's
``ca_bundle``; tests clear them so only the key can make a client trust the test CA."""


@contextmanager
def serve_tls(app: ASGIApp, files: TlsFiles, *, date_header: bool = True) -> Iterator[ServerThread]:
    """``app`` over HTTPS on 127.0.0.1 with the certificate in ``files``."""
    with ServerThread(
        app, ssl_certfile=str(files.cert), ssl_keyfile=str(files.key), date_header=date_header
    ) as server:
        yield server


class ConnectionRelay:
    """A TCP relay on 127.0.0.1 in front of ``target_port`` that counts accepted connections.

    A context manager: on exit it stops accepting, closes every relayed connection and joins
    its threads."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so the accept loop sees stop() promptly
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._count = 0
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="relay-accept", daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return self._count

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                self._count += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                pump = threading.Thread(target=_pump, args=(source, sink), daemon=True)
                with self._lock:
                    self._threads.append(pump)
                pump.start()

    def start(self) -> Self:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._acceptor.join()
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            _close(sock)
        for thread in threads:
            thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until either side ends; then end both directions."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
