"""Page load times of the web workbench (not part of the tests): a 1,000-flow inventory and the full matrix.

Starts the service with the workbench (create_app + mount, uvicorn on a loopback port, the embedded bundle, a fresh
SQLite database), signs in as an analyst, then times, each as the wall time of the HTTP request a browser makes:
  - uploading a 1,000-flow inventory (CSV as Excel saves it) and opening its page (every row validated);
  - running the ASEAN-MCC comparison on it (2,000 checks) and opening the result, whole and filtered to changes;
  - running the full matrix (every covered origin x every built-in profile x every destination, baseline and the
    ASEAN-MCC scenario) and opening its heatmap, whole and filtered to changes.
Each page is fetched --repeat times; the best and the median are printed (JSON), with the page sizes.

    .venv/bin/python bench/bench_web.py [--flows 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from dfft.api.app import create_app
from dfft.api.settings import Settings
from dfft.web import mount
from dfft.whatif.matrix import all_destinations

PASSWORD = "bench password 1234"


def inventory(n: int, origins: list[str], dests: list[str], seed: int = 7) -> bytes:
    rnd = random.Random(seed)
    cats = ["personal", "personal,financial", "health", "employee", "personal,precise_geolocation"]
    lines = ["id;origin;destination;data_categories;subjects;as_of"]
    for i in range(n):
        o = rnd.choice(origins)
        d = rnd.choice([x for x in dests if x != o])
        lines.append(
            f"flow-{i};{o};{d};{rnd.choice(cats)};{rnd.choice([100, 5000, 25000, 1200000]):,};2026-06-01".replace(
                ",", "."
            )
        )
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def timed(fn: Any, repeat: int) -> dict[str, Any]:
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = fn()
        times.append(time.perf_counter() - t0)
        assert r.status_code in (200, 303), (r.status_code, r.text[-500:])
        size = len(r.content)
    return {"best_s": round(min(times), 3), "median_s": round(statistics.median(times), 3), "bytes": size}


def csrf(c: httpx.Client, path: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', c.get(path).text)
    assert m
    return m.group(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--flows", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        app = create_app(Settings(data_dir=Path(tmp)))
        mount(app)
        startup = time.perf_counter() - t0
        app.state.web["accounts"].add_user("bench", PASSWORD, "analyst")
        rs = app.state.rules.engine.ruleset
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        out: dict[str, Any] = {"startup_s": round(startup, 2), "flows": args.flows, "repeat": args.repeat}
        with httpx.Client(base_url=url, timeout=600) as c:
            c.post("/ui/login", data={"csrf": _login_token(c), "username": "bench", "password": PASSWORD})
            data = inventory(args.flows, sorted(rs.jurisdictions), all_destinations(rs))
            r = c.post(
                "/ui/inventories/upload",
                data={"csrf": csrf(c, "/ui/inventories"), "name": "bench"},
                files={"file": ("bench.csv", data)},
            )
            assert r.status_code == 303, (r.status_code, re.findall(r"<li>(.*?)</li>", r.text.split("<main", 1)[1])[:5])
            t_up = r.elapsed.total_seconds()
            inv = r.headers["location"]
            out["upload_s"] = round(t_up, 3)
            out["inventory_page"] = timed(lambda: c.get(inv), args.repeat)
            r = c.post(
                "/ui/scenarios",
                data={
                    "csrf": csrf(c, "/ui/scenarios"),
                    "name": "ASEAN MCC",
                    "f0_destination": "ASEAN",
                    "f0_add": "asean_mcc",
                },
            )
            sid = r.headers["location"].rsplit("/", 1)[1]
            tok = csrf(c, "/ui/analyses")
            form = {"csrf": tok, "kind": "diff", "inventory": inv.rsplit("/", 1)[1], "scenario": sid}
            out["diff_run"] = timed(lambda: c.post("/ui/analyses", data=form), 1)
            loc = c.post("/ui/analyses", data=form).headers["location"]
            out["diff_page"] = timed(lambda: c.get(loc), args.repeat)
            out["diff_page_changed_only"] = timed(lambda: c.get(loc + "?changed=1"), args.repeat)
            mform = {"csrf": tok, "kind": "matrix", "scenario": sid}
            r = c.post("/ui/analyses", data=mform)
            out["matrix_run_s"] = round(r.elapsed.total_seconds(), 3)
            mloc = r.headers["location"]
            out["matrix_page"] = timed(lambda: c.get(mloc), args.repeat)
            out["matrix_page_changed_only"] = timed(lambda: c.get(mloc + "?changed=1"), args.repeat)
            page = c.get(mloc).text
            out["matrix_cells"] = len(re.findall(r'<td class="cell', page))
        server.should_exit = True
    print(json.dumps(out, indent=1))


def _login_token(c: httpx.Client) -> str:
    return csrf(c, "/ui/login")


if __name__ == "__main__":
    main()
