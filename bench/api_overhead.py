"""CPU per never-seen POST /v1/check inside the service, beside the engine alone (not part of the tests).

    .venv/bin/python -m bench.api_overhead [N] [--rounds 3] [--profile] [--audit-writer thread|process]

Builds the real app (`create_app`: SQLite audit log in a temporary folder, the embedded corpus), starts its lifespan,
and in each round judges N distinct requests (bench/workload.py, judged as of today) two ways, one after the other in
the same process: `Engine.check` on the parsed JSON body (the engine alone) and the whole ASGI app (hot path, key
check, body memo, audit row committed by the writer thread), 8 requests in flight as with `wrk -c8`, no HTTP server
and no network. It prints CPU microseconds per request: the process (every thread), the event-loop thread, the audit
writer thread, and the ratio app / engine. CPU time, and both measured in one process, so a loaded machine changes
the absolute figures more than the ratio; the HTTP layer (uvicorn, sockets) is not in it (bench/bench_api.py is).
With --audit-writer process the rows go to an audit writer process (api/writer.py, as `dfft serve` runs it): the
writer process's CPU is printed instead of the writer thread's (the worker has no writer thread then).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def thread_cpu(native_id: Any, pid: Any = "self") -> float:
    f = Path(f"/proc/{pid}/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", nargs="?", type=int, default=1000, help="requests per round and way")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile the app's last round (event-loop thread)")
    ap.add_argument("--audit-writer", default="thread", choices=("thread", "process"))
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ["DFFT_DATA_DIR"] = tempfile.mkdtemp(prefix="dfft-api-overhead-")
    from bench.workload import requests
    from dfft.api.app import create_app, utc_today
    from dfft.rules import load_ruleset

    bodies = []
    for r in requests(load_ruleset(), 2 * a.n * a.rounds + 100, seed=7):
        r.pop("as_of", None)
        bodies.append(json.dumps(r, separators=(",", ":")).encode())
    wproc = None
    if a.audit_writer == "process":
        from dfft.api.db import open_database
        from dfft.api.settings import Settings
        from dfft.api.writer import WriterProcess

        settings = Settings()
        open_database(settings.url).dispose()
        wproc = WriterProcess(settings.url)
        wproc.start()
        settings.audit_writer = wproc.address
        app = create_app(settings)
    else:
        app = create_app()
    st = app.state
    token = st.keys.create("check")[0]
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {token}".encode()),
    ]

    async def call(body: bytes) -> int:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/check", "raw_path": b"/v1/check", "query_string": b"",
                 "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
                 "state": {}}  # fmt: skip
        status = 0
        given = False

        async def receive() -> dict:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(msg: Any) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]

        await app(scope, receive, send)
        return status

    async def run() -> dict[str, list[float]]:
        life: asyncio.Queue = asyncio.Queue()
        await life.put({"type": "lifespan.startup"})

        async def noop(_: Any) -> None:
            return None

        lifespan = asyncio.create_task(
            app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, life.get, noop)
        )
        await asyncio.sleep(0.2)
        deadline = time.monotonic() + 60
        while not st.audit.alive:  # the writer process listening (it starts beside the app)
            assert time.monotonic() < deadline, "the audit writer did not start"
            await asyncio.sleep(0.05)
        for b in bodies[:100]:
            assert await call(b) == 200
        # the writer thread of this process, or (a writer process) none: its acknowledgements are read by the loop
        writer = next((t for t in threading.enumerate() if t.name == "dfft-audit-writer"), None)
        wpid = wproc.proc.pid if wproc is not None else None
        eng, today = st.rules.engine, utc_today()
        out: dict[str, list[float]] = {}
        gate = asyncio.Semaphore(8)

        async def one(b: bytes, gate: asyncio.Semaphore) -> None:
            async with gate:
                assert await call(b) == 200

        for rnd in range(a.rounds):
            chunk = bodies[100 + 2 * a.n * rnd : 100 + 2 * a.n * (rnd + 1)]
            alone, through = chunk[: a.n], chunk[a.n :]
            c0 = time.process_time()
            for b in alone:
                eng.check(json.loads(b), today)
            c1, t1 = time.process_time(), time.thread_time()
            w1 = thread_cpu(writer.native_id) if writer is not None else 0.0
            p1 = process_cpu(wpid) if wpid else 0.0
            prof = None
            if a.profile and rnd == a.rounds - 1:
                import cProfile

                prof = cProfile.Profile()
                prof.enable()
            await asyncio.gather(*(one(b, gate) for b in through))
            if prof is not None:
                import pstats

                prof.disable()
                pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
            c2, t2 = time.process_time(), time.thread_time()
            w2 = thread_cpu(writer.native_id) if writer is not None else 0.0
            p2 = process_cpu(wpid) if wpid else 0.0
            out.setdefault("engine alone", []).append((c1 - c0) / a.n * 1e6)
            out.setdefault("app, all threads", []).append((c2 - c1) / a.n * 1e6)
            out.setdefault("app, event-loop thread", []).append((t2 - t1) / a.n * 1e6)
            if writer is not None:
                out.setdefault("app, audit writer", []).append((w2 - w1) / a.n * 1e6)
            if wpid:
                out.setdefault("writer process", []).append((p2 - p1) / a.n * 1e6)
        print(f"audit: {st.audit.count():,} rows in {st.audit.transactions:,} transactions")
        await life.put({"type": "lifespan.shutdown"})
        await lifespan
        return out

    try:
        res = asyncio.run(run())
    finally:
        if wproc is not None:
            wproc.stop()
    print(f"\nCPU us per never-seen request, {a.n} per round and way, {a.rounds} rounds (median [min-max]):")
    for k, v in res.items():
        print(f"  {k:24} {statistics.median(v):7.0f} [{min(v):.0f}-{max(v):.0f}]")
    ratios = [x / y for x, y in zip(res["app, all threads"], res["engine alone"], strict=True)]
    print(f"  {'app / engine':24} {statistics.median(ratios):7.2f} [{min(ratios):.2f}-{max(ratios):.2f}]")


if __name__ == "__main__":
    main()
