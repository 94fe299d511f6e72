"""Real servers for the orchestration tests: a free loopback port, and the dfft API under uvicorn."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_api(rules_dir: Path) -> Iterator[str]:
    """Start the dfft API (`create_app`, audit database in a temporary data directory) under uvicorn on a free
    127.0.0.1 port; yield its URL. A check-scope API key is created and exported as DFFT_API_KEY meanwhile, which
    is where `dfft.guard` reads its key from."""
    import os
    import tempfile

    import uvicorn

    from dfft.api.app import create_app
    from dfft.api.settings import Settings
    from dfft.plugins.guard import ENV_API_KEY

    data_dir = tempfile.mkdtemp(prefix="dfft-api-")
    app = create_app(Settings(data_dir=Path(data_dir), rules_dir=rules_dir))
    key, _ = app.state.keys.create("check", "orchestration tests")
    previous_key = os.environ.get(ENV_API_KEY)
    os.environ[ENV_API_KEY] = key
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the dfft API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if previous_key is None:
            os.environ.pop(ENV_API_KEY, None)
        else:
            os.environ[ENV_API_KEY] = previous_key
