"""`dfft serve` (the HTTP API on uvicorn) and `dfft keys` (API keys), registered on the main CLI by `register`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from .options import LOG_LEVELS, choice

keys_app = typer.Typer(
    help="API keys for the HTTP service (stored hashed in the service database).", no_args_is_help=True
)

DATA_DIR = typer.Option(
    None, "--data-dir", envvar="DFFT_DATA_DIR", help="Directory of the SQLite audit database [default: ./data]"
)
DB_URL = typer.Option(
    None,
    "--database-url",
    envvar="DFFT_DATABASE_URL",
    help="SQLAlchemy URL of the database, e.g. postgresql+psycopg://... (overrides --data-dir)",
)


SERVER_EXTRA = "pip install 'dfft[server]'"


def need_server(command: str) -> None:
    """Exit with a clear message (exit code 3) when the server extra is not installed. Looks the modules up without
    importing them: importing Alembic alone is ~0.2 s, and a start on a current schema never needs it."""
    import importlib.util

    missing = []
    for module in ("fastapi", "uvicorn", "sqlalchemy", "alembic"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    if missing:
        typer.echo(
            f"dfft {command} needs the HTTP service's dependencies, which a plain `pip install dfft` leaves out "
            f"(missing: {', '.join(missing)}). Install them with: {SERVER_EXTRA}",
            err=True,
        )
        raise typer.Exit(3)


def _settings(data_dir: Optional[Path], database_url: Optional[str], rules_dir: Optional[Path] = None) -> Any:
    from ..api.settings import Settings

    s = Settings()
    if data_dir is not None:
        s.data_dir = data_dir
    if database_url:
        s.database_url = database_url
    if rules_dir is not None:
        s.rules_dir = rules_dir
    return s


def _keystore(data_dir: Optional[Path], database_url: Optional[str], command: str) -> Any:
    need_server(command)
    from ..api.db import open_database
    from ..api.keys import KeyStore

    return KeyStore(open_database(_settings(data_dir, database_url).url))


def _existing_keystore(data_dir: Optional[Path], database_url: Optional[str], command: str) -> Any:
    """The key store of an existing database, or None where there is none: reading keys never creates a database
    (nor migrates one)."""
    need_server(command)
    import sqlalchemy as sa

    from ..api.db import create_db_engine
    from ..api.keys import KeyStore

    url = _settings(data_dir, database_url).url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
        if not path.exists():
            typer.echo(f"no service database at {path}: no keys (`dfft keys create` makes one)", err=True)
            return None
    eng = create_db_engine(url)
    if not sa.inspect(eng).has_table("api_keys"):
        typer.echo("the service database has no keys table yet: no keys", err=True)
        eng.dispose()
        return None
    return KeyStore(eng)


@keys_app.command("create")
def keys_create(
    scope: str = typer.Option(
        ..., "--scope", help="check (judge transfers) or admin (also reload rules, read the audit log)"
    ),
    name: str = typer.Option("", "--name", help="A label, e.g. the calling team or job"),
    data_dir: Optional[Path] = DATA_DIR,
    database_url: Optional[str] = DB_URL,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from ..api.keys import SCOPES

    if scope not in SCOPES:
        raise typer.BadParameter(f"expected one of {', '.join(SCOPES)}", param_hint="--scope")
    token, key = _keystore(data_dir, database_url, "keys create").create(scope, name)
    typer.echo(token)
    typer.echo(f"key id {key.id}, scope {key.scope}: store it now, it cannot be shown again", err=True)


@keys_app.command("list")
def keys_list(data_dir: Optional[Path] = DATA_DIR, database_url: Optional[str] = DB_URL) -> None:
    """List keys (ids, names, scopes; never secrets), one JSON object a line. Creates no database."""
    store = _existing_keystore(data_dir, database_url, "keys list")
    for k in store.list() if store is not None else []:
        typer.echo(
            json.dumps(
                {
                    "id": k.id,
                    "name": k.name,
                    "scope": k.scope,
                    "created_at": k.created_at.isoformat(),
                    "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                }
            )
        )


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="The key id (the 12 hex digits after dfft_)"),
    data_dir: Optional[Path] = DATA_DIR,
    database_url: Optional[str] = DB_URL,
) -> None:
    """Revoke a key (every instance refuses it within seconds)."""
    store = _existing_keystore(data_dir, database_url, "keys revoke")
    if store is None or not store.revoke(key_id):
        raise typer.BadParameter(f"no active key {key_id!r}")
    typer.echo(f"revoked {key_id}")


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the service on this machine (a name other than localhost counts as not)."""
    import ipaddress

    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def plain_http_warning(host: str) -> str:
    return (
        f"warning: serving plain HTTP on {host}, reachable from other machines: API keys and decisions cross the "
        "network in clear. Put a TLS-terminating reverse proxy in front, or pass --ssl-certfile and --ssl-keyfile."
    )


# -- serving: one uvicorn per process, N processes on one port (SO_REUSEPORT) ------------------------------------
# The event loop and HTTP parser: uvloop and httptools where installed (the `server` extra installs them on CPython),
# else asyncio and h11.
def server_impl() -> tuple[str, str]:
    """(loop, http) for uvicorn: the fast implementations where they are installed."""
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    return loop, http


# Garbage-collection policy of a serving process (see docs/performance.md, "HTTP API"): once the app is built (rule
# bundle loaded, engine compiled), everything alive is moved out of the collector's reach (gc.freeze(): still freed
# by reference counting, never traversed again), and the first generation's threshold is raised, so that collections
# are rarer and never walk the rule set, the compiled engine or the libraries. DFFT_GC=default leaves Python's GC as
# it is.
GC_THRESHOLD = (50_000, 20, 100)


def gc_policy() -> str:
    import gc
    import os

    policy = os.environ.get("DFFT_GC", "freeze").strip().lower() or "freeze"
    if policy == "default":
        return policy
    if policy != "freeze":
        raise typer.BadParameter(f"DFFT_GC={policy!r}: expected 'freeze' or 'default'")
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    return policy


def listening_socket(host: str, port: int, reuse_port: bool) -> Any:
    """A listening TCP socket on (host, port). Made with proto=IPPROTO_TCP, so that asyncio sets TCP_NODELAY on every
    connection it accepts (a socket made with proto 0, as uvicorn's own --workers socket is, gets Nagle's algorithm:
    each response then waits for the client's delayed ACK, ~40 ms); TCP_NODELAY is set on the listener as well (Linux
    passes it on to accepted connections). With `reuse_port`, every worker process binds its own socket to the same
    port (SO_REUSEPORT) and the kernel spreads new connections over them."""
    import socket

    family, type_, proto, _, addr = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, type_, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
        sock.listen(2048)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def run_one(build: Any, args: tuple, options: dict[str, Any], reuse_port: bool = False) -> None:
    """Build the app (`build(*args)`), apply the GC policy, bind, and serve until SIGINT / SIGTERM."""
    import uvicorn

    app = build(*args)
    policy = gc_policy()
    loop, http = server_impl()
    sock = listening_socket(options["host"], options["port"], reuse_port)
    config = uvicorn.Config(
        app,
        log_level=options.get("log_level", "info"),
        access_log=False,
        server_header=False,
        loop=loop,
        http=http,
        lifespan="on",
        ssl_certfile=options.get("ssl_certfile"),
        ssl_keyfile=options.get("ssl_keyfile"),
        backlog=2048,
    )
    if options.get("log_level", "info") in ("info", "debug", "trace"):
        scheme = "https" if options.get("ssl_certfile") else "http"
        typer.echo(
            f"dfft serve: {scheme}://{options['host']}:{options['port']} (pid {os_getpid()}, {loop} loop, {http} "
            f"parser, GC {policy})",
            err=True,
        )
    uvicorn.Server(config).run(sockets=[sock])


def os_getpid() -> int:
    import os

    return os.getpid()


def _worker(build: Any, args: tuple, options: dict[str, Any]) -> None:  # the target of each worker process
    import os
    import signal
    import threading
    import time

    group = options["worker_group"]
    os.environ["DFFT_WORKER_GROUP"] = str(group)  # this process only (see dfft_app)

    def orphaned() -> None:  # the supervisor was killed (SIGKILL: it could not stop us): stop gracefully
        while os.getppid() == group:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=orphaned, name="dfft-orphan-watch", daemon=True).start()
    run_one(build, args, options, reuse_port=True)


QUICK_EXIT = 10.0  # seconds: a worker that fails this soon after its start stops the whole group (a start-up error)


def supervise(build: Any, args: tuple, options: dict[str, Any], workers: int, writer: Any = None) -> int:
    """Run `workers` processes, each a complete instance (its own engine, memo, key cache and audit writer) bound to
    the same port with SO_REUSEPORT. The parent only supervises: SIGTERM / SIGINT stop every worker (gracefully, then
    killed after 30 s); SIGHUP is passed on to every worker (each reloads its rule bundle: the admin reload endpoint
    sends it, so a reload through any worker reaches all of them); a worker that dies is restarted, unless it failed
    within QUICK_EXIT seconds of its start, which stops the group with its exit code. `writer` (api/writer.py
    WriterProcess), when given, is started before the workers, restarted when it dies and stopped after them.
    Returns the exit code."""
    import contextlib
    import multiprocessing
    import os
    import signal
    import socket
    import time

    if not hasattr(socket, "SO_REUSEPORT"):
        raise typer.BadParameter("--workers above 1 needs SO_REUSEPORT (Linux, BSD, macOS)", param_hint="--workers")
    # reserve the port for the group's lifetime (bound, never listening: it takes no connections) and fail early when
    # it is taken
    family, type_, _, _, addr = socket.getaddrinfo(
        options["host"].strip("[]"), options["port"], type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    reserve = socket.socket(family, type_, socket.IPPROTO_TCP)
    reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserve.bind(addr)
    if not options["port"]:
        options = {**options, "port": reserve.getsockname()[1]}
    options = {**options, "worker_group": os.getpid()}  # the workers' reloads through the admin endpoint signal it
    ctx = multiprocessing.get_context("spawn")
    procs: list[Any] = [None] * workers
    started = [0.0] * workers
    stopping = False
    code = 0

    def spawn(i: int) -> None:
        p = ctx.Process(target=_worker, args=(build, args, options), name=f"dfft-worker-{i}", daemon=False)
        p.start()
        procs[i], started[i] = p, time.monotonic()

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    def forward_hup(*_: Any) -> None:
        for p in procs:
            if p is not None and p.pid and p.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGHUP)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, forward_hup)
    try:
        if writer is not None:
            writer.start()
        for i in range(workers):
            spawn(i)
        while not stopping:
            time.sleep(0.2)
            what = writer.check() if writer is not None and not stopping else None
            if what and not what.startswith("waiting"):
                typer.echo(f"dfft serve: {what}", err=True)
            for i, p in enumerate(procs):
                if stopping or p.is_alive():
                    continue
                if time.monotonic() - started[i] < QUICK_EXIT and p.exitcode:
                    typer.echo(f"dfft serve: worker {i} failed at start (exit code {p.exitcode}); stopping", err=True)
                    code, stopping = p.exitcode if p.exitcode > 0 else 1, True
                    break
                typer.echo(f"dfft serve: worker {i} (pid {p.pid}) exited ({p.exitcode}); restarting it", err=True)
                spawn(i)
    finally:
        for p in procs:
            if p is not None and p.is_alive():
                p.terminate()  # SIGTERM: uvicorn finishes the requests in flight, the audit writer drains
        deadline = time.monotonic() + 30
        for p in procs:
            if p is not None:
                p.join(max(0.1, deadline - time.monotonic()))
                if p.is_alive():
                    p.kill()
                    p.join(5)
        if writer is not None:
            writer.stop()  # after the workers: every row they sent is committed and acknowledged first
        reserve.close()
    return code


def serve_app(build: Any, args: tuple, options: dict[str, Any], workers: int = 1, writer: Any = None) -> None:
    """Serve `build(*args)` (a picklable module-level function and arguments: each worker process builds its own
    app) on options' host and port, in one process or `workers` processes; with `writer` (api/writer.py
    WriterProcess), the audit writer process beside them (started first, restarted when it dies, stopped last)."""
    if workers <= 1:
        if writer is None:
            run_one(build, args, options)
            return
        import threading

        writer.start()
        done = threading.Event()
        writer.watch(done)
        try:
            run_one(build, args, options)
        finally:
            done.set()
            writer.stop()
        return
    code = supervise(build, args, options, workers, writer)
    if code:
        raise typer.Exit(code)


def dfft_app(settings: Any, web: bool) -> Any:
    """The app `dfft serve` runs (one per worker process)."""
    import os

    from ..api.app import create_app

    if os.environ.get("DFFT_WORKER_GROUP"):  # a worker of `dfft serve --workers N` (set by _worker)
        settings.worker_group = int(os.environ["DFFT_WORKER_GROUP"])
    app_ = create_app(settings)
    if web:
        try:
            from ..web import mount
        except ImportError as e:  # the `web` extra (python-multipart, babel, openpyxl) is not installed
            typer.echo(f"web workbench not served (pip install 'dfft[web]'): {e}", err=True)
        else:
            mount(app_)  # the privacy officers' workbench under /ui
    return app_


def register(app: typer.Typer, state: Any) -> None:
    app.add_typer(keys_app, name="keys")

    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to bind (loopback by default)"),
        port: int = typer.Option(8000),
        data_dir: Optional[Path] = DATA_DIR,
        database_url: Optional[str] = DB_URL,
        log_level: str = typer.Option(
            "info", metavar="LEVEL", callback=choice("--log-level", LOG_LEVELS), help=" | ".join(LOG_LEVELS)
        ),
        ssl_certfile: Optional[Path] = typer.Option(
            None, "--ssl-certfile", exists=True, dir_okay=False, help="Serve HTTPS with this certificate (PEM)"
        ),
        ssl_keyfile: Optional[Path] = typer.Option(
            None, "--ssl-keyfile", exists=True, dir_okay=False, help="The certificate's private key (PEM)"
        ),
        no_web: bool = typer.Option(False, "--no-web", help="Do not serve the web workbench (/ui)"),
        workers: int = typer.Option(
            1,
            "--workers",
            envvar="DFFT_WORKERS",
            help="Worker processes on the port (SO_REUSEPORT), each a whole instance; about one per core",
        ),
    ) -> None:
        """Run the HTTP API (FastAPI on uvicorn): checks, audit log, API keys, hot rule reloads (SIGHUP), and the web
        workbench under /ui (accounts: `dfft web user add`)."""
        if (ssl_certfile is None) != (ssl_keyfile is None):
            raise typer.BadParameter(
                "give both --ssl-certfile and --ssl-keyfile, or neither", param_hint="--ssl-keyfile"
            )
        need_server("serve")
        if ssl_certfile is None and not is_loopback(host):
            typer.echo(plain_http_warning(host), err=True)
        if workers < 1:
            raise typer.BadParameter("at least 1", param_hint="--workers")
        settings = _settings(data_dir, database_url, state.rules_dir)
        import os

        writer = None
        mode = os.environ.get("DFFT_AUDIT_WRITER", "auto").strip().lower() or "auto"
        if mode not in ("auto", "process", "thread"):
            raise typer.BadParameter(f"DFFT_AUDIT_WRITER={mode!r}: expected 'auto', 'process' or 'thread'")
        if mode == "auto":
            # several workers: one writer process for all (one writer on the database, no lock contention between
            # workers, nothing of it on their event loops); one worker: its writer thread, which measured as fast or
            # faster on a 2-core machine (docs/performance.md, "API, fourth pass")
            mode = "process" if workers > 1 else "thread"
        if workers > 1 or mode == "process":
            # migrate (or create) the database once, before the workers and the audit writer start: each then finds
            # the schema current
            from ..api.db import open_database

            open_database(settings.url).dispose()
        if mode == "process":
            # one audit writer process commits the rows of every worker (api/writer.py): one writer on the database
            # whatever the number of workers, and none of the database work on a worker's event loop
            from ..api.writer import WriterProcess

            try:
                writer = WriterProcess(settings.url, settings.ready_probe_interval)
            except ValueError as e:
                raise typer.BadParameter(str(e)) from None
            settings.audit_writer = writer.address
        options = dict(
            host=host,
            port=port,
            log_level=log_level,
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
        )
        # Each worker is a whole instance (engine, memo, key cache, audit writer) in its own process: the C engine
        # holds the GIL, so processes are what use more cores. Several hosts: run instances on one PostgreSQL database.
        serve_app(dfft_app, (settings, not no_web), options, workers, writer)
