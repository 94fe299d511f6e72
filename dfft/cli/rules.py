"""`dfft rules list|coverage|show`: browse the rule sets."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from .options import out, state
from .service import DATA_DIR, DB_URL

rules_app = typer.Typer(help="Browse the rule sets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `dfft rules` group to the `dfft` app."""
    app.add_typer(rules_app, name="rules")


@rules_app.command("list")
def rules_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Jurisdictions with their rule counts per domain."""
    rs = state.ruleset()
    rows: list[dict[str, Any]] = []
    for code in sorted(rs.jurisdictions):
        j = rs.jurisdictions[code]
        counts = {d: len(j.rules_in(d)) for d in ("data_protection", "localisation", "ip")}
        low = sum(1 for r in j.rules if r.confidence == "low")
        rows.append({"code": code, "name": j.name, **counts, "low_confidence": low, "laws": sorted(j.laws)})
    if as_json:
        out.print_json(json.dumps(rows))
        return
    t = Table(title=f"Rule sets (bundle {rs.version}, {rs.hash[:12]})")
    for col in ("code", "name", "data_protection", "localisation", "ip", "low conf.", "laws"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r["code"],
            r["name"],
            str(r["data_protection"]),
            str(r["localisation"]),
            str(r["ip"]),
            str(r["low_confidence"]),
            ", ".join(r["laws"]),
        )
    out.print(t)


@rules_app.command("manifest")
def rules_manifest(
    directory: Optional[Path] = typer.Argument(
        None, help="Bundle directory (default: --rules, else the embedded jurisdictions/)"
    ),
) -> None:
    """(Re)write bundle.yaml's manifest: the jurisdictions and the SHA-256 of every file, which the loader verifies.
    Run it after changing a bundle (and bump the bundle's version)."""
    from ..rules.loader import default_rules_dir, load_ruleset, write_manifest

    root = directory or state.rules_dir or default_rules_dir()
    man = write_manifest(root)
    load_ruleset(root)  # the bundle as stamped must load
    out.print(
        f"[green]ok[/]: {root / 'bundle.yaml'}: {len(man['jurisdictions'])} jurisdictions, {len(man['files'])} files"
    )


@rules_app.command("coverage")
def rules_coverage(
    as_markdown: bool = typer.Option(False, "--markdown", help="Print the Markdown of docs/coverage.md"),
) -> None:
    """For every jurisdiction x domain: rule count, confidence (high/medium/low) and newest source date."""
    from ..rules.coverage import DOMAINS, coverage, markdown

    rs = state.ruleset()
    if as_markdown:
        sys.stdout.write(markdown(rs))
        return
    t = Table(title=f"Rule coverage (bundle {rs.version}); cells: rules (high/medium/low) newest source")
    t.add_column("code")
    for d in DOMAINS:
        t.add_column(d)
    for code, row in coverage(rs).items():
        t.add_row(code, *(row[d].text() for d in DOMAINS))
    out.print(t)


@rules_app.command("show")
def rules_show(
    ident: str = typer.Argument(
        ..., metavar="CODE|RULE-ID", help="A jurisdiction code (JP) or a rule id (JP-APPI-28-consent)"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a rule as JSON (the rule model)"),
) -> None:
    """Show a jurisdiction's rules, or one rule in full (as text; --json for the model)."""
    rs = state.ruleset()
    if ident.upper() in rs.jurisdictions:
        j = rs.jurisdictions[ident.upper()]
        out.print(f"[bold]{j.code} — {j.name}[/]")
        for law in j.laws.values():
            out.print(f"  {law.key}: {law.title} <{law.url}>")
        t = Table()
        for col in ("rule", "domain", "scope", "effect", "in force", "conf.", "title"):
            t.add_column(col)
        for r in sorted(j.rules, key=lambda r: (r.domain, r.id)):
            window = f"{r.effective_from or '…'} – {r.effective_until or '…'}"
            effect = r.effect or ("derive " + ",".join(r.derive))
            t.add_row(r.id, r.domain, r.scope, effect, window, r.confidence, r.title)
        out.print(t)
        return
    try:
        rule = rs.rule(ident)
    except KeyError:
        raise typer.BadParameter(
            f"no jurisdiction or rule {ident!r}; jurisdictions: {', '.join(sorted(rs.jurisdictions))}"
        ) from None
    if as_json:
        out.print_json(rule.model_dump_json())
        return
    from .text import render_rule

    owner = rs.jurisdictions.get(rule.jurisdiction)
    render_rule(rule, owner.laws.get(rule.citation.law) if owner else None, out)


# -- bundle distribution: publish to the service database, which every `dfft serve` instance follows -------------------
def _bundle_db(data_dir: Optional[Path], database_url: Optional[str], command: str) -> Any:
    from .service import _settings, need_server

    need_server(command)
    from ..api.db import open_database

    return open_database(_settings(data_dir, database_url).url)


@rules_app.command("publish")
def rules_publish(
    directory: Optional[Path] = typer.Argument(
        None, help="Bundle directory (default: --rules, else the embedded jurisdictions/)"
    ),
    activate_id: Optional[int] = typer.Option(
        None, "--activate", metavar="ID", help="Activate the stored bundle ID instead (a roll-back); DIR not allowed"
    ),
    no_activate: bool = typer.Option(False, "--no-activate", help="Store the bundle without activating it"),
    by: Optional[str] = typer.Option(None, "--by", help="Who publishes (default: user@host)"),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON"),
    data_dir: Optional[Path] = DATA_DIR,
    database_url: Optional[str] = DB_URL,
) -> None:
    """Validate a bundle (the loader's checks with its manifest, and a compile), store it in the service database and
    make it the active bundle: every `dfft serve` on that database converges on it within DFFT_BUNDLE_POLL_SECONDS
    (default 5). With --activate ID, make an already stored bundle the active one again. Exit 4 when refused."""
    from ..api import distribution

    if activate_id is not None:
        if directory is not None or no_activate:
            raise typer.BadParameter("--activate ID takes no DIR and no --no-activate", param_hint="--activate")
        db = _bundle_db(data_dir, database_url, "rules publish")
        try:
            distribution.activate(db, activate_id, by or distribution.default_publisher())
        except KeyError:
            raise typer.BadParameter(f"no stored bundle {activate_id}", param_hint="--activate") from None
        finally:
            db.dispose()
        result: dict[str, Any] = {"id": activate_id, "status": "activated", "active": True}
    else:
        from ..rules.loader import default_rules_dir

        root = directory or state.rules_dir or default_rules_dir()
        db = _bundle_db(data_dir, database_url, "rules publish")
        try:
            result = distribution.publish(db, root, by, activate_it=not no_activate)
        finally:
            db.dispose()
    if as_json:
        out.print_json(json.dumps(result))
        return
    if result["status"] == "activated":
        out.print(f"[green]ok[/]: bundle {result['id']} is active")
        return
    out.print(
        f"[green]ok[/]: bundle {result['id']} {result['status']}: version {result['version']}, "
        f"ruleset hash {result['ruleset_hash'][:12]}, {result['files']} files"
        + (", active" if result["active"] else ", not active")
    )


@rules_app.command("published")
def rules_published(
    as_json: bool = typer.Option(False, "--json", help="One JSON object a line"),
    data_dir: Optional[Path] = DATA_DIR,
    database_url: Optional[str] = DB_URL,
) -> None:
    """The bundles stored with `dfft rules publish`, newest first; the active one is marked."""
    from ..api import distribution
    from .service import _settings

    url = _settings(data_dir, database_url).url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///").split("?", 1)[0]).exists():
        typer.echo(f"no service database at {url.removeprefix('sqlite:///')}: nothing published", err=True)
        return  # listing never creates a database
    db = _bundle_db(data_dir, database_url, "rules published")
    try:
        rows = distribution.published(db)
    finally:
        db.dispose()
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r))
        return
    t = Table(title="Published rule bundles")
    for col in ("id", "active", "version", "ruleset hash", "jurisdictions", "published by", "published at"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            str(r["id"]),
            "*" if r["active"] else "",
            r["version"],
            r["ruleset_hash"][:12],
            str(len(r["jurisdictions"])),
            r["published_by"],
            r["published_at"],
        )
    out.print(t)
