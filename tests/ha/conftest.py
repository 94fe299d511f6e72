"""The horizontally scaled API under test: real `dfft serve` processes on one real PostgreSQL (tests/api/pg.py)
behind a real nginx from the distribution's packages, all on loopback. Without nginx or PostgreSQL the tests that need
them are skipped with the reason (`.ci/run` installs both where it can)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest

from ..api.conftest import free_port
from ..api.pg import pg  # noqa: F401  (the PostgreSQL server fixture)

TIMEOUT = 10  # seconds, every HTTP call of these tests


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "ha: several dfft serve instances behind nginx on PostgreSQL (tests/ha)")


def nginx_binary() -> Optional[str]:
    found = os.environ.get("DFFT_TEST_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
    return found if os.path.exists(found) else None


NGINX_CONF = """\
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 512; }}
http {{
    log_format upstreams '$request_method $uri $status upstream=$upstream_addr upstream_status=$upstream_status';
    access_log {root}/access.log upstreams;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    client_max_body_size 20m;
    client_body_buffer_size 1m;  # bodies stay in memory (and can be sent again to the next instance)
    upstream dfft {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://dfft;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 2s;
            proxy_send_timeout 30s;
            proxy_read_timeout 30s;
            # an instance that refuses the connection, resets it or dies before answering: the request goes to the
            # next one -- POST too (non_idempotent): a check killed mid-flight is judged again, and audited again,
            # by the survivor; the client gets one answer, whose decision is committed
            proxy_next_upstream error timeout non_idempotent;
            proxy_next_upstream_tries 2;
            proxy_next_upstream_timeout 30s;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    proc: subprocess.Popen
    url: str
    root: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_nginx(root: Path, backends: list[str]) -> Nginx:
    binary = nginx_binary()
    assert binary
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # nginx's workers run as nobody when the master is root
    (root / "tmp").mkdir(exist_ok=True)
    port = free_port()
    servers = "\n".join(f"        server {b} max_fails=1 fail_timeout=30s;" for b in backends)
    (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, servers=servers, port=port))
    cmd = [binary, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log"), "-g", "daemon off;"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"nginx exited with {proc.returncode}: {(root / 'error.log').read_text()[-2000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return Nginx(proc, url, root)
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "nginx did not answer within 30 s"
        time.sleep(0.1)


@dataclass
class Instance:
    proc: subprocess.Popen
    url: str
    log: Path
    addr: str = field(default="")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_instances(tmp: Path, database_url: str, rules: Path, n: int, env: dict[str, str]) -> list[Instance]:
    """`n` real `dfft serve` processes on one database, started at once; returned when every /readyz answers 200."""
    out = []
    for i in range(n):
        port = free_port()
        log = tmp / f"serve-{i}.log"
        cmd = [sys.executable, "-m", "dfft.cli", "--rules", str(rules), "serve", "--port", str(port)]
        cmd += ["--database-url", database_url, "--data-dir", str(tmp / f"data-{i}"), "--log-level", "warning"]
        with open(log, "wb") as f:
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **env})
        out.append(Instance(proc, f"http://127.0.0.1:{port}", log, f"127.0.0.1:{port}"))
    deadline = time.monotonic() + 90
    for inst in out:
        while True:
            if inst.proc.poll() is not None:
                raise AssertionError(f"dfft serve exited with {inst.proc.returncode}: {inst.log.read_text()[-2000:]}")
            try:
                if httpx.get(inst.url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"dfft serve not ready within 90 s: {inst.log.read_text()[-2000:]}")
            time.sleep(0.1)
    return out


def need_nginx() -> str:
    binary = nginx_binary()
    if binary is None:
        pytest.skip(
            "nginx not found (Debian: apt-get install -y nginx; `.ci/run` does it): load-balanced tests skipped"
        )
    return binary
