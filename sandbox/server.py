"""Serve any ASGI app with uvicorn on a background thread, on a loopback port.

Every sandbox (Kukkingu, Jira, GitHub) runs through this one class, in tests, in the demo and
in ``billsync sandbox``. The listening socket is bound *before* uvicorn starts, so port 0
(an ephemeral port) works and ``.url`` is known as soon as :meth:`ServerThread.start`
returns, without racing another process for a guessed free port.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0


class ServerStartError(RuntimeError):
    """The server did not start accepting connections (bind error, crash, or timeout)."""


class ServerThread:
    """uvicorn in a daemon thread; a context manager that starts and stops it.

    ``start()`` returns only once the server accepts connections; ``stop()`` asks uvicorn to
    exit and joins the thread. TLS is on when ``ssl_certfile`` and ``ssl_keyfile`` are given
    (``url`` then starts with ``https``).
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        date_header: bool = True,
    ) -> None:
        self.host = host
        self._tls = ssl_certfile is not None
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            # A sandbox with its own clock sends its own Date (date_header=False).
            date_header=date_header,
            # An idle keep-alive client must never hold a stop() hostage.
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only
        # when it sees that proto, and without it uvicorn's separate header and body writes
        # meet Nagle + delayed ACK, costing ~40 ms per response.
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError:
            self._socket.close()
            raise
        self.port: int = self._socket.getsockname()[1]
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self._tls else 'http'}://{host}:{self.port}"

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by start(); a thread has nobody else to tell
            self._error = exc

    def start(self) -> Self:
        """Start serving and wait until connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("ServerThread.start() called twice")
        self._thread = threading.Thread(
            target=self._run, name=f"uvicorn-{self.host}:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive():
                raise ServerStartError(
                    f"server on {self.url} exited during startup: {self._error!r}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(
                    f"server on {self.url} did not start within {START_TIMEOUT_SECONDS} s"
                )
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit, then join; a second call is harmless."""
        thread = self._thread
        if thread is None:
            self._socket.close()
            return
        self._server.should_exit = True
        thread.join(STOP_TIMEOUT_SECONDS)
        if thread.is_alive():
            self._server.force_exit = True
            thread.join(STOP_TIMEOUT_SECONDS)
        self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
