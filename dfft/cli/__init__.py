"""The `dfft` command line.

Exit codes (for scripts and pipelines):
  0 allowed · 1 conditional · 2 blocked · 3 invalid request or usage · 4 invalid rule files · 5 internal error
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, cast

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..engine import Decision, Engine, EngineError, RequestError
from ..engine.compile import CompileError
from ..engine.core import BackendName
from ..rules import RuleSetError
from . import bulk as _bulk, rules as _rules, service as _service, whatif as _whatif
from .options import (
    EXIT_BAD_REQUEST,
    EXIT_BAD_RULES,
    EXIT_INTERNAL,
    EXIT_OF_VERDICT,
    err,
    out,
    parse_day,
    state,
    transfer_request,
)

# Recent typer vendors its own click; catch the exceptions of both.
try:
    from typer._click import exceptions as _typer_click

    CLICK_ERRORS: tuple = (click.ClickException, _typer_click.ClickException)
    ABORTS: tuple = (click.exceptions.Abort, typer.Abort)
except ImportError:  # typer that uses click directly
    CLICK_ERRORS, ABORTS = (click.ClickException,), (click.exceptions.Abort,)

app = typer.Typer(
    help="dfft: is this cross-border data transfer allowed, conditional or blocked, and why?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

VERDICT_STYLE = {"allowed": "bold green", "conditional": "bold yellow", "blocked": "bold red"}
EFFECT_STYLE = {"allow": "green", "condition": "yellow", "block": "red"}


@app.callback()
def _root(
    rules: Optional[Path] = typer.Option(
        None, "--rules", envvar="DFFT_RULES", help="Rule bundle directory (default: the embedded jurisdictions/)."
    ),
) -> None:
    state.rules_dir = rules


@app.command()
def check(
    origin: str = typer.Option(..., "--from", help="Exporting jurisdiction, e.g. JP"),
    destination: str = typer.Option(..., "--to", help="Final destination, e.g. VN"),
    via: Optional[list[str]] = typer.Option(None, "--via", help="Intermediate hop (repeat, in order)"),
    data: list[str] = typer.Option(..., "--data", help="Data categories, comma-separated or repeated"),
    subjects: Optional[int] = typer.Option(
        None, "--subjects", min=0, help="Distinct individuals/devices (omit: unknown, judged above every threshold)"
    ),
    safeguard: Optional[list[str]] = typer.Option(
        None, "--safeguard", help="Safeguard in place (repeat or comma-separate)"
    ),
    exporter: str = typer.Option("private", help="private | public_body | ciio"),
    sector: str = typer.Option("general"),
    purpose: str = typer.Option("general"),
    as_of: Optional[str] = typer.Option(
        None, "--as-of", help="Apply the law as of this date (YYYY-MM-DD; default today)"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON"),
    backend: str = typer.Option("durable", "--engine", help="durable (default) or reference"),
) -> None:
    """Judge one transfer and print the verdict, each finding with its citation, and the obligations."""
    request = transfer_request(origin, destination, via, data, subjects, safeguard, exporter, sector, purpose)
    request["as_of"] = parse_day(as_of, "--as-of")
    # Engine checks the name at run time (ValueError on an unknown one)
    decision = Engine(state.ruleset(), backend=cast(BackendName, backend), cache_size=0).check(request)
    if as_json:
        out.print_json(decision.model_dump_json())
    else:
        render(decision)
    raise typer.Exit(EXIT_OF_VERDICT[decision.verdict])


def render(d: Decision, console: Console = out) -> None:
    r = d.request
    path = " -> ".join([r.origin, *r.via, r.destination])
    subj = "unknown number of" if r.subjects is None else f"{r.subjects:,}"
    console.print(f"[bold]{path}[/]  {', '.join(r.data_categories)}  ({subj} subjects)  as of {d.as_of}")
    if r.safeguards:
        console.print(f"safeguards held: {', '.join(r.safeguards)}")
    console.print(f"Verdict: [{VERDICT_STYLE[d.verdict]}]{d.verdict.upper()}[/]")
    table = Table(title="Findings", show_lines=False, expand=False)
    for col in ("effect", "rule", "leg", "citation", "finding"):
        table.add_column(col)
    for f in d.findings:
        cit = f"{f.citation.law} {f.citation.article}" if f.citation else "-"
        effect = f.effect if f.status != "met" else "met"
        title = f.title + (f"  [dim](met by {', '.join(f.met_by)})[/]" if f.met_by else "")
        if f.confidence and f.confidence != "high":
            title += f"  [dim]({f.confidence} confidence)[/]"
        table.add_row(f"[{EFFECT_STYLE[f.effect]}]{effect}[/]", f.rule_id, f.leg_path or "-", cit, title)
    console.print(table)
    if d.obligations:
        console.print("[bold]Obligations[/]")
        for o in d.obligations:
            alt = f" (one of: {', '.join(o.one_of)})" if o.one_of else ""
            dl = f" [deadline: {o.deadline}]" if o.deadline else ""
            cites = "; ".join(f"{c.law} {c.article}" for c in o.citations)
            console.print(escape(f" - [{o.kind}] {o.id}: {o.text}{alt}{dl} — {cites}"))
    for note in d.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    console.print(f"[dim]rule set {d.ruleset.version} ({d.ruleset.hash[:12]}); consulted: {', '.join(d.consulted)}[/]")


@app.command()
def lint(compile_: bool = typer.Option(True, "--compile/--no-compile", help="Also compile to durable-rules")) -> None:
    """Validate every rule file (schema, references, semantics) and compile the rule set."""
    rs = state.ruleset()
    if compile_:
        Engine(rs)
    n_rules = sum(len(j.rules) for j in rs.jurisdictions.values())
    out.print(
        f"[green]ok[/]: {len(rs.jurisdictions)} jurisdictions, {n_rules} rules, bundle {rs.version} ({rs.hash[:12]})"
    )


_rules.register(app)  # `dfft rules ...`
_service.register(app, state)  # `dfft serve`, `dfft keys`
_whatif.register(app, state)  # whatif, matrix, timeline, remedy
_bulk.register(app, state)  # `dfft bulk`


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point: maps every failure to a documented exit code (never 0, 1 or 2 on an error)."""
    try:
        code = app(args=argv, standalone_mode=False)
    except RequestError as e:
        err.print(f"[red]invalid request[/]: {e}")
        code = EXIT_BAD_REQUEST
    except RuleSetError as e:
        err.print(f"[red]invalid rule files[/]: {e}")
        code = EXIT_BAD_RULES
    except CompileError as e:
        err.print(f"[red]rule set does not compile[/]: {e}")
        code = EXIT_BAD_RULES
    except EngineError as e:
        err.print(f"[red]internal error[/] (no verdict; treat as not allowed): {e}")
        code = EXIT_INTERNAL
    except ABORTS:
        code = 130
    except CLICK_ERRORS as e:
        e.show(file=sys.stderr)
        code = EXIT_BAD_REQUEST
    except Exception as e:  # fail closed
        err.print(f"[red]internal error[/] (no verdict; treat as not allowed): {type(e).__name__}: {e}")
        code = EXIT_INTERNAL
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
