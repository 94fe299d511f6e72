"""`dfft web user add|list|role|password|disable`: accounts of the web workbench (pages under /ui of `dfft serve`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from .options import WEB_ROLES, choice
from .service import DATA_DIR, DB_URL, _settings

web_app = typer.Typer(help="The web workbench (served by `dfft serve` under /ui).", no_args_is_help=True)
users_app = typer.Typer(help="Local accounts of the web workbench: viewer, analyst, admin.", no_args_is_help=True)
web_app.add_typer(users_app, name="user")


def _accounts(data_dir: Optional[Path], database_url: Optional[str]) -> Any:
    from ..api.db import open_database
    from ..web.accounts import Accounts

    return Accounts(open_database(_settings(data_dir, database_url).url))


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _fail(e: Exception) -> None:
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(3)


@users_app.command("add")
def user_add(
    username: str = typer.Argument(..., help="Sign-in name"),
    role: str = typer.Option(
        "viewer",
        "--role",
        metavar="ROLE",
        callback=choice("--role", WEB_ROLES),
        help="viewer (read), analyst (also upload, build, run), admin (also users)",
    ),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input"),
    data_dir: Optional[Path] = DATA_DIR,
    database_url: Optional[str] = DB_URL,
) -> None:
    """Create an account (e.g. the first admin). The password is asked for (or read from stdin), never an argument."""
    from ..web.accounts import AccountError

    try:
        acc = _accounts(data_dir, database_url)
        u = acc.add_user(username, _password(password_stdin), role)
        acc.record("cli", "user-add", {"user": username, "role": role})
    except AccountError as e:
        _fail(e)
    typer.echo(f"user {u.username} created with role {u.role}")


@users_app.command("list")
def user_list(data_dir: Optional[Path] = DATA_DIR, database_url: Optional[str] = DB_URL) -> None:
    """List accounts (names, roles; never passwords)."""
    for u in _accounts(data_dir, database_url).users():
        typer.echo(json.dumps({**u, "created_at": u["created_at"].isoformat()}))


@users_app.command("role")
def user_role(
    username: str, role: str, data_dir: Optional[Path] = DATA_DIR, database_url: Optional[str] = DB_URL
) -> None:
    """Change an account's role."""
    from ..web.accounts import AccountError

    try:
        acc = _accounts(data_dir, database_url)
        acc.set_role(username, role)
        acc.record("cli", "user-role", {"user": username, "role": role})
    except AccountError as e:
        _fail(e)
    typer.echo(f"user {username} now has role {role}")


@users_app.command("password")
def user_password(
    username: str,
    password_stdin: bool = typer.Option(False, "--password-stdin"),
    data_dir: Optional[Path] = DATA_DIR,
    database_url: Optional[str] = DB_URL,
) -> None:
    """Set a new password (ends the account's sessions)."""
    from ..web.accounts import AccountError

    try:
        acc = _accounts(data_dir, database_url)
        acc.set_password(username, _password(password_stdin))
        acc.record("cli", "user-password", {"user": username})
    except AccountError as e:
        _fail(e)
    typer.echo(f"password of {username} changed")


@users_app.command("disable")
def user_disable(username: str, data_dir: Optional[Path] = DATA_DIR, database_url: Optional[str] = DB_URL) -> None:
    """Disable an account (ends its sessions)."""
    from ..web.accounts import AccountError

    try:
        acc = _accounts(data_dir, database_url)
        acc.disable(username)
        acc.record("cli", "user-disable", {"user": username})
    except AccountError as e:
        _fail(e)
    typer.echo(f"user {username} disabled")


def register(app: typer.Typer) -> None:
    app.add_typer(web_app, name="web")
