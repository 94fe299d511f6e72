"""The `dfft` command line.

Exit codes (for scripts and pipelines):
  0 allowed · 1 conditional · 2 blocked · 3 invalid request or usage · 4 invalid rule files · 5 internal error
"""
from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any, Optional

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .engine import Decision, Engine, EngineError, RequestError
from .engine.compile import CompileError
from .rules import RuleSet, RuleSetError, load_ruleset

# Recent typer vendors its own click; catch the exceptions of both.
try:
    from typer._click import exceptions as _typer_click
    CLICK_ERRORS: tuple = (click.ClickException, _typer_click.ClickException)
    ABORTS: tuple = (click.exceptions.Abort, typer.Abort)
except ImportError:  # typer that uses click directly
    CLICK_ERRORS, ABORTS = (click.ClickException,), (click.exceptions.Abort,)

EXIT_ALLOWED, EXIT_CONDITIONAL, EXIT_BLOCKED, EXIT_BAD_REQUEST, EXIT_BAD_RULES, EXIT_INTERNAL = range(6)
EXIT_OF_VERDICT = {"allowed": EXIT_ALLOWED, "conditional": EXIT_CONDITIONAL, "blocked": EXIT_BLOCKED}

app = typer.Typer(help="dfft: is this cross-border data transfer allowed, conditional or blocked, and why?",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
rules_app = typer.Typer(help="Browse the rule sets.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

VERDICT_STYLE = {"allowed": "bold green", "conditional": "bold yellow", "blocked": "bold red"}
EFFECT_STYLE = {"allow": "green", "condition": "yellow", "block": "red"}


class State:
    rules_dir: Optional[Path] = None
    _ruleset: Optional[RuleSet] = None

    def ruleset(self) -> RuleSet:
        if self._ruleset is None:
            self._ruleset = load_ruleset(self.rules_dir)
        return self._ruleset


state = State()


@app.callback()
def _root(rules: Optional[Path] = typer.Option(
        None, "--rules", envvar="DFFT_RULES", help="Rule bundle directory (default: the embedded jurisdictions/).")) -> None:
    state.rules_dir = rules


def split_values(values: Optional[list[str]]) -> list[str]:
    """Values of a repeatable option that also takes comma-separated lists."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def parse_day(value: Optional[str], option: str) -> Optional[date]:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form", param_hint=option)


def transfer_request(origin: str, destination: str, via: Optional[list[str]], data: list[str], subjects: Optional[int],
                     safeguard: Optional[list[str]], exporter: str, sector: str, purpose: str) -> dict[str, Any]:
    """A TransferRequest dict from the transfer options every command shares (--from, --to, --via, --data, ...)."""
    return dict(origin=origin, destination=destination, via=split_values(via), data_categories=split_values(data),
                subjects=subjects, safeguards=split_values(safeguard), exporter=exporter, sector=sector, purpose=purpose)


@app.command()
def check(
    origin: str = typer.Option(..., "--from", help="Exporting jurisdiction, e.g. JP"),
    destination: str = typer.Option(..., "--to", help="Final destination, e.g. VN"),
    via: Optional[list[str]] = typer.Option(None, "--via", help="Intermediate hop (repeat, in order)"),
    data: list[str] = typer.Option(..., "--data", help="Data categories, comma-separated or repeated"),
    subjects: Optional[int] = typer.Option(None, "--subjects", min=0, help="Distinct individuals/devices (omit: unknown, judged above every threshold)"),
    safeguard: Optional[list[str]] = typer.Option(None, "--safeguard", help="Safeguard in place (repeat or comma-separate)"),
    exporter: str = typer.Option("private", help="private | public_body | ciio"),
    sector: str = typer.Option("general"),
    purpose: str = typer.Option("general"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Apply the law as of this date (YYYY-MM-DD; default today)"),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON"),
    backend: str = typer.Option("durable", "--engine", help="durable (default) or reference"),
) -> None:
    """Judge one transfer and print the verdict, each finding with its citation, and the obligations."""
    request = transfer_request(origin, destination, via, data, subjects, safeguard, exporter, sector, purpose)
    request["as_of"] = parse_day(as_of, "--as-of")
    decision = Engine(state.ruleset(), backend=backend, cache_size=0).check(request)
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
    out.print(f"[green]ok[/]: {len(rs.jurisdictions)} jurisdictions, {n_rules} rules, "
              f"bundle {rs.version} ({rs.hash[:12]})")


@rules_app.command("list")
def rules_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Jurisdictions with their rule counts per domain."""
    rs = state.ruleset()
    rows = []
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
        t.add_row(r["code"], r["name"], str(r["data_protection"]), str(r["localisation"]), str(r["ip"]),
                  str(r["low_confidence"]), ", ".join(r["laws"]))
    out.print(t)


@rules_app.command("coverage")
def rules_coverage(as_markdown: bool = typer.Option(False, "--markdown", help="Print the Markdown of docs/coverage.md")) -> None:
    """For every jurisdiction x domain: rule count, confidence (high/medium/low) and newest source date."""
    from .rules.coverage import DOMAINS, coverage, markdown

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
def rules_show(ident: str = typer.Argument(..., help="A jurisdiction code (JP) or a rule id (JP-APPI-28-consent)")) -> None:
    """Show a jurisdiction's rules, or one rule in full."""
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
        raise typer.BadParameter(f"no jurisdiction or rule {ident!r}; jurisdictions: {', '.join(sorted(rs.jurisdictions))}")
    out.print_json(rule.model_dump_json())


from .cli_api import register as _register_api  # noqa: E402  (`dfft serve`, `dfft keys`)

_register_api(app, state)


from .cli_whatif import register as _register_whatif  # noqa: E402  (whatif, matrix, timeline, remedy)
_register_whatif(app, state)


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
