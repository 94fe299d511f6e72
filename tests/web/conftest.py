"""The workbench under test runs for real: `create_app` + `mount` on uvicorn on a loopback port, on a copy of the
embedded rule bundle, with a fresh SQLite database and one account per role."""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import dfft.jurisdictions
from dfft.api.app import create_app
from dfft.api.settings import Settings
from dfft.web import WebSettings, mount

from ..api.conftest import loopback_socket

BUNDLE = Path(dfft.jurisdictions.__file__).parent
PASSWORD = "correct horse battery staple"
USERS = {"admin": "admin", "ana": "analyst", "vic": "viewer"}


@dataclass
class Web:
    app: Any
    url: str
    rules_dir: Path
    data_dir: Path
    server: Any
    thread: Any

    @contextmanager
    def client(self, user: str | None = None, **kw: Any) -> Iterator[httpx.Client]:
        """An HTTP client (a cookie jar, like a browser), signed in as `user` when given."""
        with httpx.Client(base_url=self.url, timeout=120, follow_redirects=False, **kw) as c:
            if user:
                r = login(c, user)
                assert r.status_code == 303, r.text[-500:]
            yield c

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def page(c: httpx.Client, path: str) -> str:
    r = c.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[-1000:])
    return r.text


def login(c: httpx.Client, user: str, password: str = PASSWORD) -> httpx.Response:
    tok = csrf_of(page(c, "/ui/login"))
    r = c.post("/ui/login", data={"csrf": tok, "username": user, "password": password, "next": "/ui/"})
    return r


def post(c: httpx.Client, form_page: str, action: str, data: dict[str, Any], **kw: Any) -> httpx.Response:
    """Submit a form as a browser would: the CSRF token from the page the form is on."""
    return c.post(action, data={"csrf": csrf_of(page(c, form_page)), **data}, **kw)


def start(tmp: Path, web: WebSettings | None = None) -> Web:
    rules_dir, data_dir = tmp / "rules", tmp / "data"
    if not rules_dir.exists():
        shutil.copytree(BUNDLE, rules_dir, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    app = create_app(Settings(data_dir=data_dir, rules_dir=rules_dir))
    mount(app, web or WebSettings())
    acc = app.state.web["accounts"]
    for name, role in USERS.items():
        acc.add_user(name, PASSWORD, role)
    sock = loopback_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    return Web(app, f"http://127.0.0.1:{port}", rules_dir, data_dir, server, thread)


@pytest.fixture(scope="session")
def web(tmp_path_factory):
    w = start(tmp_path_factory.mktemp("web"))
    yield w
    w.stop()


@pytest.fixture()
def fresh_web(tmp_path):
    w = start(tmp_path)
    yield w
    w.stop()
