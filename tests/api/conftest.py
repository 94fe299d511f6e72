"""The API under test runs for real: uvicorn on a loopback port (in a thread, or as a `dfft serve` subprocess)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from dfft.api.app import create_app
from dfft.api.db import open_database
from dfft.api.keys import KeyStore
from dfft.api.settings import Settings

from ..conftest import MINI
from .pg import pg  # noqa: F401  (the PostgreSQL server fixture, for every test in tests/api)

REQ = {"origin": "JP", "destination": "VN", "data_categories": ["personal"], "subjects": 1000, "as_of": "2026-06-01"}


@dataclass
class Running:
    app: Any
    url: str
    check_key: str
    admin_key: str
    rules_dir: Path
    data_dir: Path
    server: Any = None
    thread: Any = None

    def client(self, key: str | None = "check", fixed_dates: bool = True, **kw: Any) -> httpx.Client:
        """An HTTP client for the server. The tests judge as of fixed dates (REQ's as_of), so that verdicts do not
        depend on the day the suite runs: `fixed_dates` opts in to that (?allow_other_date=true on every call)."""
        headers = {}
        if key:
            headers["Authorization"] = "Bearer " + (
                self.check_key if key == "check" else self.admin_key if key == "admin" else key
            )
        if fixed_dates:
            kw["params"] = {"allow_other_date": "true", **kw.get("params", {})}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kw)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


def loopback_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


def free_port() -> int:
    with loopback_socket() as s:
        return s.getsockname()[1]


def serve_process(
    tmp: Path, scope: str, *, stdout: Any = subprocess.DEVNULL, env: Any = None, args: tuple = ()
) -> tuple[subprocess.Popen, str, str, Path, Path]:
    """A real `dfft serve` process on a loopback port, on a copy of the fixture bundle, with a fresh SQLite audit
    database and one key of `scope`; returns (process, url, key, rules dir, data dir) once /readyz answers 200.
    `stdout` takes the server's output (stderr goes with it); the caller stops the process."""
    rules, data = tmp / "rules", tmp / "data"
    shutil.copytree(MINI, rules)
    db = open_database(f"sqlite:///{(data / 'dfft.db').resolve()}")
    key, _ = KeyStore(db).create(scope, "served test")
    db.dispose()
    port = free_port()
    cmd = [sys.executable, "-m", "dfft.cli", "--rules", str(rules), "serve", "--port", str(port)]
    cmd += ["--data-dir", str(data), "--log-level", "warning", *args]
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"dfft serve exited with {proc.returncode}"
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url, key, rules, data
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "dfft serve did not become ready"
        time.sleep(0.1)


def start(tmp: Path, **settings: Any) -> Running:
    rules_dir = tmp / "rules"
    if not rules_dir.exists():
        shutil.copytree(MINI, rules_dir)
    data_dir = tmp / "data"
    app = create_app(Settings(data_dir=data_dir, rules_dir=rules_dir, **settings))
    check_key, _ = app.state.keys.create("check", "tests")
    admin_key, _ = app.state.keys.create("admin", "tests")
    sock = loopback_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    return Running(app, f"http://127.0.0.1:{port}", check_key, admin_key, rules_dir, data_dir, server, thread)


@pytest.fixture(scope="session")
def api(tmp_path_factory):
    r = start(tmp_path_factory.mktemp("api"))
    yield r
    r.stop()


@pytest.fixture()
def fresh_api(tmp_path):
    """A server of its own (tests that reload or break things)."""
    r = start(tmp_path)
    yield r
    r.stop()
