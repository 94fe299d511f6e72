"""One audit writer for every worker of `dfft serve`: a process of its own that commits the rows of all workers
together (group commit), so that the audit database sees one writer and one fsync per group, whatever the number of
workers, and no worker spends its event loop's GIL on the database.

- `dfft serve` starts `WriterProcess` (spawned, like the workers) before its workers and restarts it if it dies.
  It listens on a unix socket in a private directory (0700, made by mkdtemp): only this user's processes can connect,
  and they can already write the audit database itself, so the socket grants nothing new.
- Each worker's `RemoteAuditLog` (an `AuditLog` whose writing half is the writer process; reading the log is as
  before, on the worker's own connection) sends every submitted group of rows as one frame and waits for its
  acknowledgement, which the writer sends only after the transaction holding those rows committed. So the guarantee
  is the one of the in-process writer: **a decision is returned only after its row is committed**.
- Fail closed: if the writer cannot be reached (not started yet, died, restarting) a submit fails at once with
  `AuditUnavailable` (503, no verdict), and every submit waiting for an acknowledgement when the connection drops
  fails the same way (its rows may or may not have been committed: a row without a returned decision is allowed,
  the reverse never). The worker reconnects as soon as the writer listens again; /readyz is not ready meanwhile.

Frames: a 4-byte big-endian length, then `marshal` data of plain tuples, strings, ints and None (never pickle: no
code runs on loading). Worker -> writer: `("r", id, rows)` rows to commit (each row a tuple in COLUMNS order, the
time as microseconds since the epoch), `("p", id)` a readiness probe. Writer -> worker: `(transactions, [(id, error
or None), ...])`, sent after each group commit (one frame per worker per group) and as the answer to a probe.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import marshal
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

from .audit import AuditLog, AuditUnavailable

log = logging.getLogger("dfft.api")

COLUMNS = (
    "id",
    "created_at",
    "caller",
    "request_hash",
    "request",
    "origin",
    "destination",
    "verdict",
    "rule_ids",
    "ruleset_version",
    "ruleset_hash",
    "batch_id",
    "labels",
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NAIVE_EPOCH = datetime(1970, 1, 1)
MICRO = timedelta(microseconds=1)
HEAD = struct.Struct("!I")
MAX_FRAME = 256 * 1024 * 1024  # bytes: far above a full batch (10,000 rows of a few KB); a longer length is garbage
SEND_TIMEOUT = 30.0  # seconds a send may wait for a writer that does not read (then the connection is dropped)
RECONNECT = 0.05  # seconds between two connection attempts while the writer is not listening
PROBE_TIMEOUT = 10.0  # seconds /readyz waits for the writer's answer to a probe
GROUP_TARGET = 32  # rows: a group this large is committed at once, without waiting for more
COMM = b"dfft-audit"  # the writer process's name (/proc/<pid>/comm)
WRITER_RESTART = 1.0  # seconds at least between two starts of the writer process


# -- the wire ----------------------------------------------------------------------------------------------------
def encode_rows(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Audit rows (api/audit.py row_for) as marshal-able tuples in COLUMNS order; the time as (microseconds, aware)."""
    out = []
    for r in rows:
        values = [r.get(c) for c in COLUMNS]
        t = values[1]
        if isinstance(t, datetime):
            values[1] = ((t - EPOCH) // MICRO, 1) if t.tzinfo is not None else ((t - NAIVE_EPOCH) // MICRO, 0)
        out.append(tuple(values))
    return out


def decode_rows(rows: Any) -> list[dict[str, Any]]:
    """The rows of a frame as the dicts AuditLog writes (the time back to a datetime, UTC where it was aware)."""
    out = []
    for values in rows:
        if not isinstance(values, tuple) or len(values) != len(COLUMNS):
            raise ValueError("malformed audit row")
        row = dict(zip(COLUMNS, values, strict=True))
        t = row["created_at"]
        if isinstance(t, tuple):
            us, aware = t
            row["created_at"] = (EPOCH if aware else NAIVE_EPOCH) + timedelta(microseconds=us)
        out.append(row)
    return out


def frame(obj: Any) -> bytes:
    data = marshal.dumps(obj)
    return HEAD.pack(len(data)) + data


def unframe(buf: bytearray) -> Iterator[Any]:
    """The whole frames at the start of `buf`, each removed from it before it is yielded (a partial frame stays for
    the next bytes). ValueError for a length over MAX_FRAME; marshal's ValueError, TypeError or EOFError for a bad
    body."""
    while len(buf) >= HEAD.size:
        (n,) = HEAD.unpack_from(buf)
        if n > MAX_FRAME:
            raise ValueError(f"frame of {n} bytes")
        if len(buf) < HEAD.size + n:
            return
        msg = marshal.loads(bytes(buf[HEAD.size : HEAD.size + n]))
        del buf[: HEAD.size + n]
        yield msg


# -- a worker's side -------------------------------------------------------------------------------------------------
class RemoteAuditLog(AuditLog):
    """The audit log of a worker whose rows are committed by the writer process at `address`. Reading (query, export,
    count) uses the worker's own database engine, as AuditLog does; writing goes to the writer (see the module).

    The connection lives on the worker's event loop (`start(loop)`, from the app's lifespan): acknowledgements are
    read by the loop itself when the socket is readable (no thread to wake, no GIL to hand over), and a check awaits
    an asyncio future that the loop resolves (`commit`). Other threads (the batch route, readiness probes) `submit`
    and wait on a concurrent future. Frames are written without blocking: what the socket does not take at once is
    kept and written when it is writable again. Before `start`, or while the writer is unreachable, every write fails
    at once with AuditUnavailable."""

    def __init__(self, db: Any, address: str):
        self.db = db
        self.address = address
        self.last_error: Optional[str] = "the audit writer is not connected yet"
        self.transactions = 0  # the writer's own count (every worker's commits), as of its last acknowledgement
        self.on_commit: list[Any] = []
        self.on_group: list[Any] = []
        self._lock = threading.Lock()  # the socket, the pending acknowledgements, the rows in flight, unsent bytes
        self._sock: Optional[socket.socket] = None
        self._pending: dict[int, tuple[Any, int, socket.socket]] = {}  # id -> (future, rows or -1: a probe, socket)
        self._ids = itertools.count()
        self._queued = 0
        self._out = bytearray()  # frames the socket did not take yet (written when it is writable)
        self._in = bytearray()  # bytes received, not yet a whole frame
        self._loop: Any = None
        self._loop_thread = 0
        self._task: Any = None
        self._closed = False

    # -- the connection (on the event loop) --------------------------------------------------------------------
    def start(self, loop: Any) -> None:
        """Connect on `loop` (the running loop of the app's lifespan) and keep connected until close()."""
        import asyncio

        self._loop, self._loop_thread = loop, threading.get_ident()
        self._connect()
        self._task = loop.create_task(self._maintain(asyncio.sleep))

    async def _maintain(self, sleep: Any) -> None:
        while not self._closed:
            await sleep(RECONNECT)
            if self._sock is None and not self._closed:
                self._connect()

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(self.address)  # a unix socket connects at once (or fails at once)
        except OSError as e:
            sock.close()
            self.last_error = f"the audit writer is not listening ({type(e).__name__})"
            return
        with self._lock:
            self._sock = sock
            self._in.clear()
            self._out.clear()
        self.last_error = None
        self._loop.add_reader(sock.fileno(), self._readable, sock)

    def _readable(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            return self._drop(sock, f"the connection to the audit writer failed: {type(e).__name__}")
        if not data:
            return self._drop(sock, "the audit writer closed the connection")
        self._in += data
        try:
            for msg in unframe(self._in):
                self._acknowledged(msg)
        except (ValueError, TypeError, EOFError) as e:
            self._drop(sock, f"a bad frame from the audit writer: {type(e).__name__}")

    def _writable(self, sock: socket.socket) -> None:
        with self._lock:
            if self._sock is not sock:
                return
            try:
                sent = sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                why: Optional[str] = f"sending to the audit writer failed: {type(e).__name__}"
            else:
                why = None
                del self._out[:sent]
                if not self._out:
                    self._loop.remove_writer(sock.fileno())
        if why:
            self._drop(sock, why)

    def _drop(self, sock: socket.socket, why: str) -> None:
        """Close a connection and fail every write waiting on it (fail closed: no acknowledgement, no decision). On the
        loop's thread; from another thread it is passed to the loop."""
        if threading.get_ident() != self._loop_thread:
            with self._lock:
                if self._sock is sock:
                    self._sock = None  # no new frames on it from now on
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing waits any more
                self._loop.call_soon_threadsafe(self._drop, sock, why)
            return
        with self._lock:
            if self._sock is sock:
                self._sock = None
                self._out.clear()
            pending = [(i, f, n) for i, (f, n, s) in self._pending.items() if s is sock]
            for i, _, n in pending:
                del self._pending[i]
                self._queued -= max(n, 0)
            self.last_error = why
        if sock.fileno() >= 0:
            self._loop.remove_reader(sock.fileno())
            self._loop.remove_writer(sock.fileno())
            sock.close()
        err = AuditUnavailable(why)
        for _, fut, n in pending:
            self._resolve(fut, n, why, err)

    @staticmethod
    def _resolve(fut: Any, n: int, result: Any, err: Optional[BaseException]) -> None:
        if fut.done():  # an awaiting request was cancelled (its client went away)
            return
        if n >= 0 and err is not None:
            fut.set_exception(err)
        else:
            fut.set_result(result)

    def _acknowledged(self, msg: Any) -> None:
        transactions, acks = msg
        self.transactions = max(self.transactions, int(transactions))
        done = []
        with self._lock:
            for i, err in acks:
                got = self._pending.pop(i, None)
                if got is not None:
                    self._queued -= max(got[1], 0)
                    done.append((got[0], got[1], err))
        committed = False
        for fut, n, err in done:
            if n < 0:  # a probe: its result is the writer's answer
                self._resolve(fut, n, err, None)
            elif err is None:
                committed = True
                self._resolve(fut, n, None, None)
            else:
                self.last_error = str(err)[:500]
                self._resolve(fut, n, None, AuditUnavailable(str(err)))
        if committed:
            self.last_error = None
            for listener in self.on_commit:
                with contextlib.suppress(Exception):
                    listener()

    # -- writing (any thread) -----------------------------------------------------------------------------------
    def _send(self, fut: Any, n: int, message: Any) -> None:
        i = next(self._ids)
        data = frame(message(i))
        why: Optional[str] = None
        wait_writable = False
        with self._lock:
            sock = self._sock
            if sock is None or self._closed:
                refused = f"the audit writer is unreachable ({self.last_error})"
            else:
                refused = None
                self._pending[i] = (fut, n, sock)  # before sending: the acknowledgement may come at once
                self._queued += max(n, 0)
                if self._out:  # earlier frames wait for the socket: after them
                    self._out += data
                    return
                try:
                    sent = sock.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError as e:
                    sent = len(data)
                    why = f"sending to the audit writer failed: {type(e).__name__}"
                if sent < len(data):
                    self._out += data[sent:]
                    wait_writable = True
        if refused is not None:
            self._resolve(fut, n, refused, AuditUnavailable(refused))
        elif why is not None:
            self._drop(sock, why)  # type: ignore[arg-type]  # the frame may be cut: every write waiting on it fails
        elif wait_writable:
            if threading.get_ident() == self._loop_thread:
                self._add_writer(sock)  # type: ignore[arg-type]
            else:
                self._loop.call_soon_threadsafe(self._add_writer, sock)

    def _add_writer(self, sock: socket.socket) -> None:
        if self._sock is sock and sock.fileno() >= 0:
            self._loop.add_writer(sock.fileno(), self._writable, sock)

    def submit(self, rows: list[dict[str, Any]]) -> Future:
        fut: Future = Future()
        self._send(fut, len(rows), lambda i: ("r", i, encode_rows(rows)))
        return fut

    async def commit(self, rows: list[dict[str, Any]]) -> None:
        """Send rows and wait for their commit, on the loop (raises AuditUnavailable if they cannot be committed)."""
        if self._loop is None:
            raise AuditUnavailable("the audit writer is not connected (the app's lifespan has not started)")
        fut = self._loop.create_future()
        self._send(fut, len(rows), lambda i: ("r", i, encode_rows(rows)))
        await fut

    def enqueue(self, rows: list[dict[str, Any]], waiter: Any) -> None:  # pragma: no cover - the writer's side only
        raise NotImplementedError

    def queued(self) -> int:
        return self._queued

    # -- readiness --------------------------------------------------------------------------------------------
    def probe(self) -> Optional[str]:
        """Ask the writer whether it can commit now (its own AuditLog.writable: the last commit, or a write probe)."""
        fut: Future = Future()
        self._send(fut, -1, lambda i: ("p", i))
        try:
            return fut.result(timeout=PROBE_TIMEOUT)
        except TimeoutError:
            return "the audit writer did not answer"

    def writable(self) -> Optional[str]:
        return self.probe()

    @property
    def alive(self) -> bool:
        return self._sock is not None and not self._closed

    def close(self, timeout: float = 30.0) -> None:
        """Stop writing (from the lifespan's end, on the loop, once the server has answered its requests): whatever
        still waits for an acknowledgement fails (no decision is returned without one)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        with self._lock:
            sock = self._sock
        if sock is not None:
            self._drop(sock, "the audit log is closed")


# -- the writer's side -----------------------------------------------------------------------------------------------
def commit_delay() -> float:
    """DFFT_AUDIT_COMMIT_DELAY_MS (default 0: off): how long, under load, a small group of rows may wait for more
    before the writer process commits it (seconds). It trades latency for CPU (a commit costs ~200 us of CPU with
    synchronous=FULL however few rows it holds); with few requests in flight the latency costs more throughput than
    the CPU saves (measured: docs/performance.md), hence off by default."""
    raw = os.environ.get("DFFT_AUDIT_COMMIT_DELAY_MS", "0")
    try:
        ms = float(raw)
    except ValueError:
        raise ValueError(f"DFFT_AUDIT_COMMIT_DELAY_MS: expected milliseconds, got {raw[:50]!r}") from None
    if not 0 <= ms <= 100:
        raise ValueError(f"DFFT_AUDIT_COMMIT_DELAY_MS: expected 0 to 100 milliseconds, got {ms:g}")
    return ms / 1000


class _Peer:
    """One connected worker: its socket and the bytes received from it that are not yet a whole frame."""

    __slots__ = ("buf", "sock")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()

    def frames(self, data: bytes) -> list[Any]:
        self.buf += data
        return list(unframe(self.buf))

    def send(self, msg: Any) -> bool:
        try:
            self.sock.sendall(frame(msg))
            return True
        except OSError:
            return False


def run_writer(address: str, url: str, probe_interval: float, parent: int) -> None:
    """The audit writer process: accept workers on `address`; read every frame that has arrived from any of them,
    commit all their rows in one transaction, acknowledge (one frame per worker), and again. While a commit runs, the
    next frames wait in the sockets: the next group. One thread, no queue: the process does nothing else. Stops on
    SIGTERM (or when `parent` is gone), after committing and acknowledging what it has read."""
    import selectors

    from .audit import MAX_GROUP
    from .db import open_database

    logging.basicConfig(level=logging.WARNING, format="dfft audit writer: %(message)s")
    with contextlib.suppress(Exception):  # Linux: `ps` and /proc/<pid>/comm show it as the audit writer
        import ctypes

        ctypes.CDLL(None).prctl(15, COMM, 0, 0, 0)  # PR_SET_NAME
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us in order
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    db = open_database(url)
    audit = AuditLog(db, probe_interval=probe_interval, thread=False)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(address)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(address)
    os.chmod(address, 0o600)
    srv.listen(128)
    srv.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ, None)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)

    def drop(peer: _Peer, why: str = "") -> None:
        if why:
            log.error("dropping a worker's connection: %s", why[:200])
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(peer.sock)
        peer.sock.close()

    def commit(rows: list[tuple[_Peer, int, list[dict[str, Any]]]]) -> None:
        """Commit the rows of the frames read (one transaction per MAX_GROUP rows), then acknowledge them."""
        acks: dict[_Peer, list[tuple[int, Optional[str]]]] = {}
        i = 0
        while i < len(rows):
            group: list[tuple[_Peer, int, list[dict[str, Any]]]] = []
            n = 0
            while i < len(rows) and (not group or n + len(rows[i][2]) <= MAX_GROUP):
                group.append(rows[i])
                n += len(rows[i][2])
                i += 1
            err = audit.write([r for _, _, rs in group for r in rs])
            for peer, ident, _ in group:
                acks.setdefault(peer, []).append((ident, err))
        for peer, items in acks.items():
            if not peer.send((audit.transactions, items)):
                drop(peer)

    def read(events: Any, got: list[tuple[_Peer, int, list[dict[str, Any]]]], probes: list[tuple[_Peer, int]]) -> int:
        """Accept new workers and read the frames that have arrived; returns the number of rows read."""
        rows = 0
        for key, _ in events:
            if key.data is None:
                with contextlib.suppress(BlockingIOError, InterruptedError):
                    sock, _ = srv.accept()
                    sock.settimeout(SEND_TIMEOUT)  # reads follow select; an acknowledgement waits at most this
                    sel.register(sock, selectors.EVENT_READ, _Peer(sock))
                continue
            peer = key.data
            try:
                data = peer.sock.recv(1 << 20)
                if not data:
                    drop(peer)
                    continue
                for msg in peer.frames(data):
                    if msg[0] == "r":
                        got.append((peer, msg[1], decode_rows(msg[2])))
                        rows += len(got[-1][2])
                    elif msg[0] == "p":
                        probes.append((peer, msg[1]))
                    else:
                        raise ValueError(f"unknown frame {msg[0]!r}")
            except (OSError, EOFError, ValueError, TypeError, IndexError) as e:
                drop(peer, f"{type(e).__name__}: {e}")
        return rows

    delay = commit_delay()
    last = 0.0  # time.monotonic() at the end of the last commit
    try:
        while not stopping:
            events = sel.select(timeout=0.5)
            if os.getppid() != parent:  # the supervisor was killed: stop (what was read is committed first)
                stopping = True
            got: list[tuple[_Peer, int, list[dict[str, Any]]]] = []
            probes: list[tuple[_Peer, int]] = []
            rows = read(events, got, probes)
            now = time.monotonic()
            if rows and delay and rows < GROUP_TARGET and now - last < 2 * delay:
                # under load (the last commit ended moments ago) a small group waits up to `delay` for more rows: a
                # commit costs ~200 us of CPU however few rows it holds (fsync, WAL pages of every index)
                until = now + delay
                while rows < GROUP_TARGET and (left := until - time.monotonic()) > 0:
                    rows += read(sel.select(timeout=left), got, probes)
            if got:
                commit(got)
                last = time.monotonic()
            for peer, ident in probes:
                if not peer.send((audit.transactions, [(ident, audit.writable())])):
                    drop(peer)
    finally:
        sel.close()
        srv.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)
        db.dispose()


class WriterProcess:
    """The audit writer process of one `dfft serve` (spawned; see run_writer), on a unix socket in a private
    directory. `check()` restarts it when it died (at most once per WRITER_RESTART seconds)."""

    def __init__(self, url: str, probe_interval: float = 10.0):
        import tempfile

        commit_delay()  # a bad DFFT_AUDIT_COMMIT_DELAY_MS fails here, not in every restart of the writer
        self.url, self.probe_interval = url, probe_interval
        self.dir = tempfile.mkdtemp(prefix="dfft-audit-")  # 0700
        self.address = os.path.join(self.dir, "writer.sock")
        self.proc: Any = None
        self.started = 0.0
        self.restarts = 0

    def start(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.proc = ctx.Process(
            target=run_writer,
            args=(self.address, self.url, self.probe_interval, os.getpid()),
            name="dfft-audit-writer",
            daemon=False,
        )
        self.proc.start()
        self.started = time.monotonic()

    def check(self) -> Optional[str]:
        """Restart the writer if it is not running; returns what happened (None when it runs)."""
        if self.proc is not None and self.proc.is_alive():
            return None
        if time.monotonic() - self.started < WRITER_RESTART:
            return "waiting to restart the audit writer"
        code = self.proc.exitcode if self.proc is not None else None
        self.restarts += 1
        self.start()
        return f"audit writer exited ({code}); restarted (pid {self.proc.pid})"

    def watch(self, stop: threading.Event, interval: float = 0.2) -> threading.Thread:
        """A thread that restarts the writer until `stop` is set (for a single-process `dfft serve`)."""

        def loop() -> None:
            while not stop.wait(interval):
                what = self.check()
                if what and not what.startswith("waiting"):
                    log.error("%s", what)

        t = threading.Thread(target=loop, name="dfft-audit-watch", daemon=True)
        t.start()
        return t

    def stop(self, timeout: float = 30.0) -> None:
        import shutil

        if self.proc is not None and self.proc.is_alive():
            self.proc.terminate()  # SIGTERM: commits and acknowledges what it received, then exits
            self.proc.join(timeout)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(5)
        shutil.rmtree(self.dir, ignore_errors=True)
