"""Real servers for the orchestration tests: a free loopback port, and the dfft API under uvicorn."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_api(rules_dir: Path) -> Iterator[str]:
    """Start `dfft.api.app.create_app(rules_dir=...)` under uvicorn on a free 127.0.0.1 port; yield its URL."""
    import uvicorn

    from dfft.api.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(rules_dir=rules_dir), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
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
