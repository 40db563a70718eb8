"""ServerThread: uvicorn on a background thread, on an ephemeral loopback port."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sandbox.server import ServerStartError, ServerThread


async def hello(request: Request) -> Response:
    return PlainTextResponse(f"hello from {request.url.port}")


APP = Starlette(routes=[Route("/", hello)])


def test_start_serves_on_an_ephemeral_port_and_stop_closes_it():
    server = ServerThread(APP)
    assert server.start() is server
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"
    response = httpx.get(server.url)
    assert response.text == f"hello from {server.port}"
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url, timeout=2)
    server.stop()  # a second stop is harmless


def test_two_servers_get_distinct_ports_and_the_context_manager_stops_them():
    with ServerThread(APP) as first, ServerThread(APP) as second:
        assert first.port != second.port
        assert httpx.get(second.url).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(first.url, timeout=2)


def test_an_explicit_port_is_used():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with ServerThread(APP, port=port) as server:
        assert server.port == port
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200


def test_a_busy_port_fails_at_construction():
    with ServerThread(APP) as server, pytest.raises(OSError, match="in use"):
        ServerThread(APP, port=server.port)


def test_start_twice_is_an_error():
    with ServerThread(APP) as server, pytest.raises(RuntimeError, match="twice"):
        server.start()


def test_a_server_that_cannot_start_raises_a_clear_error(tmp_path):
    server = ServerThread(APP, ssl_certfile=str(tmp_path / "missing.pem"), ssl_keyfile="x")
    with pytest.raises(ServerStartError, match="exited during startup"):
        server.start()
    server.stop()


def test_tls_when_given_a_certificate(tmp_path):
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    with ServerThread(APP, ssl_certfile=str(certfile), ssl_keyfile=str(keyfile)) as server:
        assert server.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context()
        authority.configure_trust(context)
        assert httpx.get(server.url, verify=context).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url, timeout=2)  # not trusted by default
