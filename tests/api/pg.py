"""A throw-away PostgreSQL cluster for the tests: initdb in a temp dir, the server on 127.0.0.1 at a free port, stopped
at the end. Installs nothing: without the server binaries (Debian: apt-get install -y postgresql; `.ci/run` does it)
or psycopg the tests that use it are skipped, with the reason.

    def test_x(pg):            # session-scoped cluster
        url = pg.new_database()   # postgresql+psycopg://... of an empty database of its own
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Optional

import pytest

TIMEOUT = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_bin() -> Optional[Path]:
    """The directory of initdb / pg_ctl: $DFFT_TEST_PG_BIN, the newest /usr/lib/postgresql/*/bin, or PATH."""
    if os.environ.get("DFFT_TEST_PG_BIN"):
        return Path(os.environ["DFFT_TEST_PG_BIN"])
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    def __init__(self, bindir: Path, root: Path, user: Optional[str]):
        self.bindir, self.root, self.user = bindir, root, user
        self.data, self.port = root / "data", _free_port()
        self.log = root / "server.log"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:  # postgres refuses to run as root
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stdout}{r.stderr}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", str(TIMEOUT), "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", str(TIMEOUT), "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}?connect_timeout=5"

    def new_database(self) -> str:
        """An empty database of its own; returns its SQLAlchemy URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=5", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def start_instance(url: str, barrier, results) -> None:
    """One instance's start in a child process (test_postgres): wait for the others, then migrate the database (what
    create_app does first). Lives here, not in the test module, so that the child imports little."""
    from dfft.api.db import open_database

    try:
        barrier.wait(60)
        open_database(url).dispose()
        results.put("ok")
    except BaseException as e:  # noqa: BLE001 — reported to the test
        results.put(f"{type(e).__name__}: {e}"[:2000])


@pytest.fixture(scope="session")
def pg():
    pytest.importorskip(
        "psycopg", reason="psycopg not installed (pip install 'psycopg[binary]'): PostgreSQL tests skipped"
    )
    bindir = server_bin()
    if bindir is None or not (bindir / "initdb").exists():
        pytest.skip(
            "PostgreSQL server binaries not found (Debian: apt-get install -y postgresql; or set "
            "DFFT_TEST_PG_BIN): PostgreSQL tests skipped"
        )
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip(
                "running as root and there is no `postgres` user to run the server as: PostgreSQL tests skipped"
            )
        if not shutil.which("runuser"):
            pytest.skip("running as root without `runuser` to run the server as `postgres`: PostgreSQL tests skipped")
        user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="dfft-pg-"))
    if user:
        u = pwd.getpwnam(user)
        os.chown(root, u.pw_uid, u.pw_gid)
    cluster = Cluster(bindir, root, user)
    try:
        cluster.init()
        cluster.start()
    except Exception:
        shutil.rmtree(root, ignore_errors=True)
        raise
    yield cluster
    with contextlib.suppress(Exception):  # already stopped by a test that failed midway
        cluster.stop()
    for _ in range(3):
        shutil.rmtree(root, ignore_errors=True)
        if not root.exists():
            break
        time.sleep(0.2)
