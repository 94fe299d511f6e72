from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.conftest import MINI

from .servers import free_port, running_api


@pytest.fixture
def closed_url() -> str:
    """A loopback URL where nothing listens: the port was free a moment ago and is closed now."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def api_url():
    """A real dfft API (uvicorn + create_app on the fixture bundle) on a free loopback port."""
    with running_api(MINI) as url:
        yield url


def _stub_server(status: int, body: bytes, content_type: str):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv


@pytest.fixture
def failing_api_url():
    """An API that answers 500 problem+json (the engine failed: no verdict)."""
    srv = _stub_server(
        500,
        b'{"type":"about:blank","title":"Internal error: no verdict","status":500,'
        b'"detail":"the engine failed; treat the transfer as not allowed"}',
        "application/problem+json",
    )
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture
def garbage_api_url():
    """Something that answers 200 with a body that is not a decision."""
    srv = _stub_server(200, b'{"verdict": "allowed"}', "application/json")
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
