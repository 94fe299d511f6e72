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
    """Exit with a clear message (exit code 3) when the server extra is not installed."""
    missing = []
    for module in ("fastapi", "uvicorn", "sqlalchemy", "alembic"):
        try:
            __import__(module)
        except ImportError:
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
        import uvicorn

        from ..api.app import create_app

        # The C engine holds the GIL, so one process serves; for more throughput run several instances on one
        # PostgreSQL database (--database-url).
        app_ = create_app(_settings(data_dir, database_url, state.rules_dir))
        if not no_web:
            try:
                from ..web import mount
            except ImportError as e:  # the `web` extra (python-multipart, babel, openpyxl) is not installed
                typer.echo(f"web workbench not served (pip install 'dfft[web]'): {e}", err=True)
            else:
                mount(app_)  # the privacy officers' workbench under /ui
        uvicorn.run(
            app_,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            server_header=False,
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
        )
