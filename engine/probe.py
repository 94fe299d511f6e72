"""Try new durable-rules ruleset definitions in a child process before they are created in this one.

durable-rules has failure modes that never return and hold the GIL (see compile.py: a node with ~512 tests): once
one starts in the serving process, nothing in it runs again, not /healthz, not a signal handler. compile.check_budget
refuses the shapes we know; this module is the second line of defence for the ones we do not. Each definition that
this process has not seen pass before is created, and one probe fact per level is asserted into it (every field the
rules test, with the types of real facts), in a child Python that imports only the C extension (it starts in
~50 ms). The parent waits at most DFFT_COMPILE_PROBE_TIMEOUT seconds (default 10), kills the child on timeout and
raises CompileError; a child that fails or crashes is a CompileError too.

Definitions that passed are remembered by the SHA-256 of their JSON (the ruleset name is not part of it), process-
wide, at most KNOWN_LIMIT of them: the embedded corpus is probed once per process, and a what-if scenario that
changes one jurisdiction probes only that jurisdiction's definition.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from collections import OrderedDict
from typing import Any

from .errors import CompileError

DEFAULT_TIMEOUT = 10.0
KNOWN_LIMIT = 4096
ENV_TIMEOUT = "DFFT_COMPILE_PROBE_TIMEOUT"

_known: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()
stats = {"probes": 0, "definitions": 0, "seconds": 0.0}

# The child: reads [[definition JSON, [fact JSON, ...]], ...] on stdin, creates each ruleset under a name of its own,
# asserts each fact and drains the actions; prints "ok" and exits 0. Anything else is a failure.
_CHILD = r"""
import json, sys
import durable_rules_engine as d
items = json.loads(sys.stdin.buffer.read())
for i, (definition, facts) in enumerate(items):
    h = d.create_ruleset("probe%d" % i, definition)
    for fact in facts:
        res = d.assert_fact(h, fact)
        if res[0] != 0:
            sys.stderr.write("assert_fact returned status %d\n" % res[0])
            sys.exit(3)
        action = d.start_action_for_state(h, res[1])
        message = action[1] if action else None
        while message:
            message = d.complete_and_start_action(h, res[1])
sys.stdout.write("ok")
"""


def timeout_s() -> float:
    raw = os.environ.get(ENV_TIMEOUT)
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{ENV_TIMEOUT}={raw!r}: expected a number of seconds") from None
    if not 0 < value <= 600:
        raise ValueError(f"{ENV_TIMEOUT}={raw!r}: expected seconds between 0 and 600")
    return value


def digest(definition_json: str) -> str:
    return hashlib.sha256(definition_json.encode("utf-8")).hexdigest()


def probe(items: dict[str, tuple[str, list[str]]], timeout: float | None = None) -> None:
    """items: code -> (definition JSON, probe facts as JSON). Raises CompileError naming the
    jurisdictions when the child does not finish cleanly within the timeout. Definitions known good are skipped."""

    todo = {}
    _load_persisted()
    with _lock:
        for code, (definition, facts) in items.items():
            if digest(definition) not in _known:
                todo[code] = (definition, facts)
    if not todo:
        return
    import subprocess  # only when a trial runs (a known bundle spawns none)

    limit = timeout_s() if timeout is None else timeout
    payload = json.dumps([list(v) for v in todo.values()]).encode("utf-8")
    codes = ", ".join(sorted(todo))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-I", "-c", _CHILD], input=payload, capture_output=True, timeout=limit)
    except subprocess.TimeoutExpired:
        raise CompileError(
            f"{codes}: durable-rules did not finish compiling and first-asserting the rule set within "
            f"{limit:g} s in a trial process (it would have hung this one); the rule set is refused. "
            f"Simplify the rules (fewer alternatives), or raise {ENV_TIMEOUT} if the machine is slow"
        ) from None
    finally:
        stats["probes"] += 1
        stats["definitions"] += len(todo)
        stats["seconds"] += time.perf_counter() - t0
    if proc.returncode != 0 or proc.stdout != b"ok":
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise CompileError(f"{codes}: durable-rules failed on the rule set in a trial process: {detail[0][:500]}")
    with _lock:
        for definition, _ in todo.values():
            _known[digest(definition)] = None
            while len(_known) > KNOWN_LIMIT:
                _known.popitem(last=False)
    _persist([digest(d) for d, _ in todo.values()])


def known(definition_json: str) -> bool:
    """Whether this definition already passed a trial (in this process, or in an earlier one with the same probe
    and compiler sources: see _known_file). compile.check_budget ran and passed on it before its trial, and is a
    function of the definition and compile.py's limits, so a known definition need not be budget-checked again."""
    _load_persisted()
    with _lock:
        return digest(definition_json) in _known


def forget() -> None:
    """Forget every known-good definition (tests)."""
    with _lock:
        _known.clear()


def probe_facts(levels: list[int], keys: dict[str, Any]) -> list[str]:
    """Facts shaped as real ones (compile.DurableBackend.match): for each level, one fact whose values match no
    constant and one whose values are the rules' first constants / true."""
    out = []
    for lvl in levels:
        for variant in (0, 1):
            fact: dict[str, Any] = {
                "sid": "probe",
                "chk": lvl * 2 + variant,
                "lvl": lvl,
                "hop": variant,
                "as_of": 20260101,
                "r_exporter": True,
                "r_importer": bool(variant),
                "r_origin": not variant,
            }
            for k, (miss, hit) in keys.items():
                fact[k] = hit if variant else miss
            out.append(json.dumps(fact, ensure_ascii=False, separators=(",", ":")))
    return out


# -- known-good definitions across processes (cold start, issue 14) ---------------------------------------------------
# A process starting on a bundle already probed by an earlier one (the usual `dfft check`, or a restart of `dfft
# serve`) skips the trial child: the digests of definitions that passed are kept in the validated-bundle cache's
# folder (rules/cache.py: DFFT_CACHE_DIR; off with DFFT_CACHE_DIR=off), in a file keyed by this module's and
# compile.py's source (which shape the probe facts) and the durable-rules extension file, so a new dfft or
# durable-rules probes again. The file is trusted only when it and its folder are private to this user (as the cache);
# at most KNOWN_LIMIT digests. Any failure only means probing again.
_persisted_loaded = False


def _known_file() -> Any:
    import importlib.util
    from pathlib import Path

    from ..rules.cache import cache_dir

    folder = cache_dir()
    spec = importlib.util.find_spec("durable_rules_engine")
    if folder is None or spec is None or not spec.origin:
        return None
    st = os.stat(spec.origin)
    h = hashlib.sha256(f"{spec.origin}|{st.st_size}|{st.st_mtime_ns}|{sys.version}".encode())
    here = Path(__file__).parent
    for name in ("probe.py", "compile.py"):
        h.update((here / name).read_bytes())
    return folder / f"probe-known-{h.hexdigest()[:32]}.txt"


def _load_persisted() -> None:
    global _persisted_loaded
    if _persisted_loaded:
        return
    _persisted_loaded = True
    try:
        path = _known_file()
        if path is None:
            return
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            for st in (os.fstat(fh.fileno()), os.stat(path.parent)):
                if st.st_uid != os.getuid() or st.st_mode & 0o022:
                    return
            lines = fh.read(80 * KNOWN_LIMIT).decode("ascii").split()
    except (OSError, UnicodeDecodeError, ValueError):
        return
    with _lock:
        for line in lines[-KNOWN_LIMIT:]:
            if len(line) == 64 and all(c in "0123456789abcdef" for c in line):
                _known.setdefault(line, None)


def _persist(digests: list[str]) -> None:
    import contextlib
    import tempfile

    tmp = None
    try:
        path = _known_file()
        if path is None or not digests:
            return
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _lock:
            lines = list(_known)[-KNOWN_LIMIT:]
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-probe-")
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
        tmp = None
    except (OSError, ValueError):
        return
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
