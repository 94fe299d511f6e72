"""The `dfft` command line as a typer app: every command, its options and its help. `dfft.cli.main` runs it (after
the fast front for a plain `dfft check`, cli/fast.py); importing this module imports typer, rich and click.

Exit codes (for scripts and pipelines):
  0 allowed · 1 conditional · 2 blocked · 3 invalid request or usage · 4 invalid rule files · 5 internal error
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..engine import Decision, Engine
from . import fast as _fast
from .options import _placeholders_not_type_names, out, state
from .text import render_decision, render_vocabulary

_placeholders_not_type_names()

EXIT_CODES = (
    "Exit codes: 0 allowed · 1 conditional (allowed once the listed obligations are met) · 2 blocked · "
    "3 invalid request or usage · 4 invalid rule files · 5 internal error (no verdict: treat as not allowed)"
)


class _LazyTyper(typer.Typer):
    """The `dfft` app, whose command groups are imported only when the command line needs them (see register)."""

    def __call__(self, *args: object, **kwargs: object) -> object:
        argv = kwargs.get("args")
        register(_command_of(list(argv) if isinstance(argv, (list, tuple)) else sys.argv[1:]))
        return super().__call__(*args, **kwargs)


app = _LazyTyper(
    help="dfft: is this cross-border data transfer allowed, conditional or blocked, and why?",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("dfft")
    except PackageNotFoundError:  # run from a checkout without installing
        v = "unknown (not installed)"
    return f"dfft {v} (Python {sys.version.split()[0]})"


def _version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit(0)


@app.callback()
def _root(
    rules: Optional[Path] = typer.Option(
        None,
        "--rules",
        envvar="DFFT_RULES",
        metavar="DIR",
        help="Rule bundle directory (default: the embedded jurisdictions/).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    state.rules_dir = rules


# closed sets of `dfft check`'s options: checked when parsed, the valid values listed (options.py)
from .options import (  # noqa: E402
    ACCESS,
    DATA_CHOICE,
    ENGINES,
    EXPORTER_CHOICE,
    OUTCOMES_TEXT,
    PURPOSE_CHOICE,
    RECIPIENT_KINDS,
    RECIPIENT_ROLES,
    RELATIONS,
    ROLES,
    SAFEGUARD_CHOICE,
    SECTOR_CHOICE,
    SIZES,
    choice,
    count_choice,
    one_of,
)


@app.command(epilog=EXIT_CODES)
def check(
    origin: Optional[str] = typer.Option(None, "--from", metavar="CODE", help="Exporting jurisdiction, e.g. JP"),
    destination: Optional[str] = typer.Option(None, "--to", metavar="CODE", help="Final destination, e.g. VN"),
    via: Optional[list[str]] = typer.Option(
        None, "--via", metavar="CODE", help="Intermediate hop, a recipient (repeat, in order)"
    ),
    transit: Optional[list[str]] = typer.Option(
        None,
        "--transit",
        metavar="CODE",
        help="A country the data only passes through after the --via hops (no access; repeat)",
    ),
    data: Optional[list[str]] = typer.Option(
        None,
        "--data",
        metavar="CATEGORY[,...]",
        callback=DATA_CHOICE,
        help="Data categories, comma-separated or repeated (`dfft vocab`)",
    ),
    subjects: Optional[int] = typer.Option(
        None,
        "--subjects",
        min=0,
        metavar="N",
        help="Distinct individuals/devices (omit: unknown, judged above every threshold)",
    ),
    safeguard: Optional[list[str]] = typer.Option(
        None,
        "--safeguard",
        metavar="NAME[=OUTCOME]",
        callback=SAFEGUARD_CHOICE,
        help="Safeguard in place (repeat or comma-separate; `dfft vocab`); with an outcome: "
        f"{OUTCOMES_TEXT}, e.g. tia_filed=unfavourable",
    ),
    exporter: str = typer.Option(
        "private",
        metavar="KIND",
        callback=EXPORTER_CHOICE,
        help="private | public_body | ciio | ... (`dfft vocab`)",
    ),
    sector: str = typer.Option(
        "general",
        metavar="SECTOR",
        callback=SECTOR_CHOICE,
        help="The exporter's sector (`dfft vocab`)",
    ),
    purpose: Optional[list[str]] = typer.Option(
        None,
        "--purpose",
        metavar="PURPOSE",
        callback=PURPOSE_CHOICE,
        help="Purpose (repeat or comma-separate; `dfft vocab`)",
    ),
    role: str = typer.Option(
        "controller",
        "--role",
        metavar="ROLE",
        callback=choice("--role", ROLES),
        help=f"The exporter's role: {one_of(ROLES)}",
    ),
    size: str = typer.Option(
        "unknown",
        "--size",
        metavar="SIZE",
        callback=choice("--size", SIZES),
        help=f"The exporter's size: {one_of(SIZES)}",
    ),
    established: Optional[list[str]] = typer.Option(
        None, "--established", metavar="CODE", help="Where the exporter is established (default: --from; repeat)"
    ),
    relation: str = typer.Option(
        "third_party",
        "--relation",
        metavar="RELATION",
        callback=choice("--relation", RELATIONS),
        help=f"The recipient: {one_of(RELATIONS)}",
    ),
    recipient_role: str = typer.Option(
        "controller",
        "--recipient-role",
        metavar="ROLE",
        callback=choice("--recipient-role", RECIPIENT_ROLES),
        help=one_of(RECIPIENT_ROLES),
    ),
    access: str = typer.Option(
        "full",
        "--access",
        metavar="ACCESS",
        callback=choice("--access", ACCESS),
        help="full, or none: the recipient cannot read the data",
    ),
    recipient_kind: str = typer.Option(
        "private",
        "--recipient-kind",
        metavar="KIND",
        callback=choice("--recipient-kind", RECIPIENT_KINDS),
        help=one_of(RECIPIENT_KINDS),
    ),
    subjects_in: Optional[list[str]] = typer.Option(
        None, "--subjects-in", metavar="CODE", help="Where the data subjects are (repeat)"
    ),
    nationality: Optional[list[str]] = typer.Option(
        None, "--nationality", metavar="CODE", help="The data subjects' nationalities (repeat)"
    ),
    collected_in: Optional[str] = typer.Option(
        None, "--collected-in", metavar="CODE", help="Where the data was collected"
    ),
    public: bool = typer.Option(False, "--publicly-available", help="All of the data is publicly available"),
    count: Optional[list[str]] = typer.Option(
        None,
        "--count",
        metavar="CATEGORY=N",
        callback=count_choice,
        help="People per category where thresholds differ (repeat)",
    ),
    request_file: Optional[str] = typer.Option(
        None,
        "--request",
        metavar="FILE|-",
        help="A request in the API's JSON or YAML schema, from FILE or - (stdin); the other options are then "
        "not allowed",
    ),
    as_of: Optional[str] = typer.Option(
        None, "--as-of", metavar="YYYY-MM-DD", help="Apply the law as of this date (default today)"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON"),
    backend: str = typer.Option(
        "durable", "--engine", metavar="ENGINE", callback=choice("--engine", ENGINES), help=one_of(ENGINES)
    ),
) -> None:
    """Judge one transfer and print the verdict, each finding with its citation, and the obligations.

    The exit code is the verdict: 0 allowed, 1 conditional, 2 blocked."""
    # the same two steps as the fast front's (cli/fast.py), which runs plain command lines without typer
    request = _fast.request_of(**locals())
    raise typer.Exit(_fast.judge(request, backend, as_json))


def render(d: Decision, console: Console = out) -> None:
    """The decision as text, readable at 80 columns (dfft.cli.text)."""
    render_decision(d, console)


@app.command()
def vocab(
    as_json: bool = typer.Option(False, "--json", help="Print the vocabulary as JSON (as GET /v1/vocabulary)"),
) -> None:
    """List the values a request may use, with what each means.

    Data categories, safeguards, purposes, sectors and exporter kinds."""
    from ..api.models import vocabulary_of

    v = vocabulary_of(state.ruleset().vocabulary)
    if as_json:
        out.print_json(v.model_dump_json())
    else:
        render_vocabulary(v, out)


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


# The command groups, imported and registered on demand: `dfft check` never imports the what-if, bulk or service
# modules (nor what they import), which is a good part of its start-up. Order = the order of `dfft --help`.
GROUPS = ("rules", "service", "whatif", "web", "bulk")
GROUP_OF = {
    "rules": "rules",  # `dfft rules ...`
    "serve": "service",  # `dfft serve`
    "keys": "service",  # `dfft keys ...`
    "whatif": "whatif",
    "matrix": "whatif",
    "timeline": "whatif",
    "remedy": "whatif",
    "web": "web",  # `dfft web user ...`
    "bulk": "bulk",
}
CORE_COMMANDS = ("check", "vocab", "lint")
_registered: set[str] = set()


def _command_of(argv: list[str]) -> Optional[str]:
    """The command a command line runs (the first word after the global options), or None (help, --version)."""
    skip = False
    for tok in argv:
        if skip:
            skip = False
        elif tok == "--rules":
            skip = True
        elif not tok.startswith("-"):
            return tok
    return None


def register(command: Optional[str] = None) -> None:
    """Register the command group `command` needs: none for check, vocab and lint; every group for anything else
    (help, an unknown command) so that help lists every command."""
    if command in CORE_COMMANDS:
        return
    wanted = [GROUP_OF[command]] if command in GROUP_OF else list(GROUPS)
    for group in GROUPS:
        if group not in wanted or group in _registered:
            continue
        _registered.add(group)
        if group == "rules":
            from . import rules as _rules

            _rules.register(app)
        elif group == "service":
            from . import service as _service

            _service.register(app, state)
        elif group == "whatif":
            from . import whatif as _whatif

            _whatif.register(app, state)
        elif group == "web":
            from . import web as _web

            _web.register(app)
        else:
            from . import bulk as _bulk

            _bulk.register(app, state)
