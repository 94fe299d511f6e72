"""`dfft whatif`, `dfft matrix`, `dfft timeline`, `dfft remedy`: what-if analyses for privacy officers.

Exit codes: 0 done · 3 invalid scenario, request file or usage · 4 invalid rule files · 5 internal error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..whatif.context import Engines, InventoryError, load_requests
from ..whatif.scenario import Scenario, ScenarioError, load_scenario
from .options import (
    DATA_CHOICE,
    ENGINES,
    EXPORTER_CHOICE,
    PURPOSE_CHOICE_DEFAULT,
    SAFEGUARD_CHOICE,
    SECTOR_CHOICE,
    choice,
    one_of,
    parse_day as _day,
    split_values as _split,
    transfer_request as _request,
)
from .text import render_matrix

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
STYLE = {"allowed": "green", "conditional": "yellow", "blocked": "red", "-": "dim"}
EXIT_BAD_INPUT = 3
EXIT_CODES = (
    "Exit codes: 0 done · 3 invalid scenario, request file or usage · 4 invalid rule files · "
    "5 internal error (no result: treat the transfers as not allowed)"
)


def _friendly(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except (ScenarioError, InventoryError) as e:
            err.print(f"[red]invalid input[/]: {escape(str(e))}")
            raise typer.Exit(EXIT_BAD_INPUT) from e
        except ValueError as e:
            if type(e).__name__ in ("RequestError",):
                raise
            err.print(f"[red]invalid input[/]: {escape(str(e))}")
            raise typer.Exit(EXIT_BAD_INPUT) from e

    return wrapper


def _write_report(path: Optional[Path], title: str, **parts: Any) -> None:
    if path is None:
        return
    from ..whatif.report import render_report

    path.write_text(render_report(title, **parts), encoding="utf-8")
    err.print(f"report written to [bold]{path}[/]")


def register(app: typer.Typer, state: Any) -> None:
    """Add the what-if commands to the `dfft` app (`state.ruleset()` gives the baseline)."""

    def engines(backend: str, today: Optional[date] = None) -> Engines:
        return Engines(state.ruleset(), backend=backend, today=today)

    def scenario(path: Optional[Path]) -> Optional[Scenario]:
        return load_scenario(path, state.ruleset()) if path else None

    # the transfer, as `timeline` and `remedy` take it
    origin_opt = typer.Option(..., "--from", metavar="CODE", help="Exporting jurisdiction, e.g. JP")
    destination_opt = typer.Option(..., "--to", metavar="CODE", help="Final destination, e.g. VN")
    via_opt = typer.Option(None, "--via", metavar="CODE", help="Intermediate hop (repeat)")
    data_opt = typer.Option(
        ...,
        "--data",
        metavar="CATEGORY[,...]",
        callback=DATA_CHOICE,
        help="Data categories (`dfft vocab`)",
    )
    subjects_opt = typer.Option(None, "--subjects", min=0, metavar="N", help="Distinct individuals")
    safeguard_opt = typer.Option(
        None,
        "--safeguard",
        metavar="NAME",
        callback=SAFEGUARD_CHOICE,
        help="Safeguard in place (repeat or comma-separate; `dfft vocab`)",
    )
    exporter_opt = typer.Option(
        "private",
        metavar="KIND",
        callback=EXPORTER_CHOICE,
        help="The exporter's kind (`dfft vocab`)",
    )
    sector_opt = typer.Option(
        "general",
        metavar="SECTOR",
        callback=SECTOR_CHOICE,
        help="The exporter's sector (`dfft vocab`)",
    )
    purpose_opt = typer.Option(
        "general",
        metavar="PURPOSE",
        callback=PURPOSE_CHOICE_DEFAULT,
        help="The purpose (`dfft vocab`)",
    )
    engine_opt = typer.Option(
        "durable", "--engine", metavar="ENGINE", callback=choice("--engine", ENGINES), help=one_of(ENGINES)
    )
    ray_opt = typer.Option(
        False, "--ray", help="Judge on Ray, as `dfft bulk` does (pip install 'dfft[ray]'): for large inventories"
    )
    workers_opt = typer.Option(None, "--workers", min=1, metavar="N", help="With --ray: workers (default: all cores)")
    address_opt = typer.Option(
        None, "--ray-address", metavar="ADDRESS", help="With --ray: join this cluster (e.g. ray://head:10001)"
    )

    def batch(ray: bool, workers: Optional[int], address: Optional[str], e: Engines, sc: Optional[Scenario]) -> Any:
        """The Ray backend as a batch judge (plugins/bulk_whatif.py), or None: in-process."""
        if not ray:
            if workers is not None or address is not None:
                raise typer.BadParameter("--workers and --ray-address need --ray")
            return None
        from ..plugins.bulk import BulkError
        from ..plugins.bulk_whatif import batch_judge

        try:
            return batch_judge("ray", state.rules_dir, e.baseline, e.today, sc, e.pool.hash_of, workers, address)
        except BulkError as x:
            err.print(f"[red]cannot run on Ray[/]: {escape(str(x))}")
            raise typer.Exit(EXIT_BAD_INPUT) from None

    @app.command(epilog=EXIT_CODES)
    @_friendly
    def whatif(
        scenario_file: Path = typer.Argument(
            ..., metavar="SCENARIO", help="Scenario file (YAML or JSON), see examples/"
        ),
        requests: Path = typer.Option(
            ...,
            "--requests",
            "--inventory",
            "-r",
            metavar="FILE",
            help="Transfers to judge: CSV, JSON or YAML (e.g. your data-flow inventory)",
        ),
        as_of: Optional[str] = typer.Option(
            None, "--as-of", metavar="YYYY-MM-DD", help="Baseline date for requests without as_of (default today)"
        ),
        report: Optional[Path] = typer.Option(
            None, "--report", metavar="FILE", help="Write a self-contained HTML report here"
        ),
        show_all: bool = typer.Option(False, "--all", help="List unchanged transfers too"),
        as_json: bool = typer.Option(False, "--json", help="Print the diff as JSON (as POST /v1/whatif/diff)"),
        backend: str = engine_opt,
        ray: bool = ray_opt,
        workers: Optional[int] = workers_opt,
        ray_address: Optional[str] = address_opt,
    ) -> None:
        """Judge transfers under the baseline and under a scenario; show what changes and why."""
        from ..whatif.diff import diff

        sc = scenario(scenario_file)
        assert sc is not None
        reqs = load_requests(requests)
        e = engines(backend, _day(as_of, "--as-of"))
        judge = batch(ray, workers, ray_address, e, sc)
        try:
            result = diff(e, reqs, sc, judge=judge)
        finally:
            if judge is not None:
                judge.close()
        if as_json:
            out.print_json(result.model_dump_json())
        else:
            out.print(f"[bold]Scenario[/]: {escape(sc.name)}")
            for line in sc.summary():
                out.print(f"  - {escape(line)}")
            c = result.counts
            out.print(
                f"{c['requests']} transfers; {c['verdict_changed']} change verdict ({c['better']} better, "
                f"{c['worse']} worse); {c['changed']} change findings or obligations; {c['errors']} invalid"
            )
            t = Table()
            for col in ("id", "transfer", "baseline", "scenario", "why"):
                t.add_column(col)
            for it in result.items:
                if not (show_all or it.changed or it.error):
                    continue
                why = [f"+ {f.rule_id}: {f.why}" for f in it.appeared] + [
                    f"- {f.rule_id}: {f.why}" for f in it.disappeared
                ]
                why += [f"+ obligation {o.id}" for o in it.obligations_appeared]
                why += [f"- obligation {o.id}" for o in it.obligations_disappeared]
                t.add_row(
                    escape(it.id),
                    escape(it.path),
                    f"[{STYLE[it.baseline]}]{it.baseline}[/]",
                    f"[{STYLE[it.scenario]}]{it.scenario}[/]",
                    escape(it.error or "\n".join(why)),
                )
            out.print(t)
        _write_report(report, f"What-if: {sc.name}", scenario=sc, diff=result, ruleset=e.engine().ref)

    @app.command(epilog=EXIT_CODES)
    @_friendly
    def matrix(
        origin: Optional[list[str]] = typer.Option(
            None, "--from", metavar="CODE[,...]", help="Origin(s); default: every covered jurisdiction"
        ),
        to: Optional[list[str]] = typer.Option(
            None, "--to", metavar="CODE[,...]", help="Destinations; default: every jurisdiction and list member"
        ),
        profile: Optional[list[str]] = typer.Option(
            None, "--profile", metavar="NAME[,...]", help="Data profile name(s) (default: all five)"
        ),
        profiles: Optional[Path] = typer.Option(
            None, "--profiles", metavar="FILE", help="Profiles file (YAML, see dfft/whatif/profiles.yaml)"
        ),
        scenario_file: Optional[Path] = typer.Option(
            None, "--scenario", metavar="FILE", help="Also judge every cell under this scenario"
        ),
        as_of: Optional[str] = typer.Option(None, "--as-of", metavar="YYYY-MM-DD", help="Judge as of (default today)"),
        report: Optional[Path] = typer.Option(
            None, "--report", metavar="FILE", help="Write an HTML report with the heatmap"
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the matrix as JSON (as POST /v1/whatif/matrix)"),
        backend: str = engine_opt,
        ray: bool = ray_opt,
        workers: Optional[int] = workers_opt,
        ray_address: Optional[str] = address_opt,
        progress: Optional[bool] = typer.Option(
            None, "--progress/--no-progress", help="Progress bar on stderr (default: when stderr is a terminal)"
        ),
    ) -> None:
        """Verdict for every destination, per origin and data profile (and under a scenario).

        Destinations as rows, one column group per origin, fitted to the terminal's width (COLUMNS)."""
        from ..whatif.matrix import all_destinations, load_profiles, matrix as run

        sc = scenario(scenario_file)
        e = engines(backend, _day(as_of, "--as-of"))
        profs = load_profiles(profiles, _split(profile) or None)
        origins = [o.upper() for o in _split(origin)] or sorted(e.baseline.jurisdictions)
        dests = [d.upper() for d in _split(to)] or all_destinations(e.baseline)
        judge = batch(ray, workers, ray_address, e, sc)
        show = err.is_terminal if progress is None else progress
        try:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
                disable=not show,
            ) as bar:
                if judge is None:
                    e.engine()
                    if sc:
                        e.for_scenario(sc)
                n_cells = sum(1 for o in origins for _ in profs for d in dests if d != o)
                task = bar.add_task("judging cells", total=n_cells * (2 if sc else 1))
                m = run(
                    e,
                    origins,
                    profs,
                    dests,
                    sc,
                    _day(as_of, "--as-of"),
                    progress=lambda n: bar.advance(task, n),
                    judge=judge,
                )
        finally:
            if judge is not None:
                judge.close()
        if as_json:
            out.print_json(m.model_dump_json())
        else:
            render_matrix(m, out)
        on = f" on Ray ({judge.workers} workers)" if judge is not None else ""
        err.print(f"{m.checks} checks for {len(m.cells)} cells in {m.seconds:.2f} s{on}")
        _write_report(
            report, "Destination matrix" + (f": {sc.name}" if sc else ""), scenario=sc, matrix=m, ruleset=e.engine().ref
        )

    @app.command(epilog=EXIT_CODES)
    @_friendly
    def timeline(
        origin: str = origin_opt,
        destination: str = destination_opt,
        via: Optional[list[str]] = via_opt,
        data: list[str] = data_opt,
        subjects: Optional[int] = subjects_opt,
        safeguard: Optional[list[str]] = safeguard_opt,
        exporter: str = exporter_opt,
        sector: str = sector_opt,
        purpose: str = purpose_opt,
        start: str = typer.Option("2018-01-01", "--start", metavar="YYYY-MM-DD", help="First date"),
        end: str = typer.Option("2030-12-31", "--end", metavar="YYYY-MM-DD", help="Last date"),
        scenario_file: Optional[Path] = typer.Option(
            None, "--scenario", metavar="FILE", help="Also follow the transfer under this scenario"
        ),
        report: Optional[Path] = typer.Option(None, "--report", metavar="FILE", help="Write an HTML report here"),
        as_json: bool = typer.Option(False, "--json", help="Print the timeline as JSON"),
        backend: str = engine_opt,
    ) -> None:
        """The verdict for one transfer across dates: when laws start (or stop) to bite."""
        from ..whatif.timeline import timeline as run

        e = engines(backend)
        req = _request(origin, destination, via, data, subjects, safeguard, exporter, sector, purpose)
        t = run(e, req, _day(start, "--start"), _day(end, "--end"), scenario(scenario_file))  # type: ignore[arg-type]
        if as_json:
            out.print_json(t.model_dump_json())
        else:
            for label, segs in (("baseline", t.segments), (t.scenario, t.scenario_segments)):
                if not segs:
                    continue
                tab = Table(
                    title=f"{escape(label or '')}: {origin} -> {destination} ({t.dates_evaluated} dates evaluated)"
                )
                for col in ("from", "until", "verdict", "what changes"):
                    tab.add_column(col)
                for s in segs:
                    ch = "\n".join(
                        f"{c.rule_id} {c.change}" + (f" ({c.citation.law} {c.citation.article})" if c.citation else "")
                        for c in s.changes
                    )
                    tab.add_row(str(s.start), str(s.end or "…"), f"[{STYLE[s.verdict]}]{s.verdict}[/]", escape(ch))
                out.print(tab)
        _write_report(
            report,
            f"Timeline {origin} -> {destination}",
            timeline=t,
            ruleset=e.engine().ref,
            scenario=scenario(scenario_file),
        )

    @app.command(epilog=EXIT_CODES)
    @_friendly
    def remedy(
        origin: str = origin_opt,
        destination: str = destination_opt,
        via: Optional[list[str]] = via_opt,
        data: list[str] = data_opt,
        subjects: Optional[int] = subjects_opt,
        safeguard: Optional[list[str]] = safeguard_opt,
        exporter: str = exporter_opt,
        sector: str = sector_opt,
        purpose: str = purpose_opt,
        as_of: Optional[str] = typer.Option(
            None, "--as-of", metavar="YYYY-MM-DD", help="Judge as of this date (default today)"
        ),
        max_size: int = typer.Option(4, "--max-size", min=1, metavar="N", help="Largest safeguard set to try"),
        scenario_file: Optional[Path] = typer.Option(
            None, "--scenario", metavar="FILE", help="Search under this scenario"
        ),
        report: Optional[Path] = typer.Option(None, "--report", metavar="FILE", help="Write an HTML report here"),
        as_json: bool = typer.Option(False, "--json", help="Print the remedies as JSON"),
        backend: str = engine_opt,
    ) -> None:
        """The smallest sets of safeguards that make a transfer allowed (or, when blocked, conditional)."""
        from ..whatif.remedy import remedy as run

        e = engines(backend)
        req = _request(origin, destination, via, data, subjects, safeguard, exporter, sector, purpose)
        req["as_of"] = _day(as_of, "--as-of")
        sc = scenario(scenario_file)
        r = run(e, req, sc, max_size=max_size)
        if as_json:
            out.print_json(r.model_dump_json())
        else:
            out.print(
                f"verdict now: [{STYLE[r.verdict]}]{r.verdict}[/]; candidates: {', '.join(r.candidates) or 'none'}"
            )
            for b in r.blockers:
                out.print(f"[red]blocked by[/] {b.rule_id}: {escape(b.title)}")
            tab = Table(title="Smallest safeguard sets")
            for col in ("add", "gives", "cures", "obligations it brings"):
                tab.add_column(col)
            for x in r.remedies:
                obs = "\n".join(f"[{o.kind}] {o.id}" for o in x.obligations) or "none"
                tab.add_row(
                    " + ".join(x.safeguards), f"[{STYLE[x.verdict]}]{x.verdict}[/]", ", ".join(x.cures), escape(obs)
                )
            out.print(tab)
            if r.note:
                out.print(f"[dim]{escape(r.note)}[/]")
        _write_report(report, f"Remedies {origin} -> {destination}", remedy=r, scenario=sc, ruleset=e.engine().ref)
