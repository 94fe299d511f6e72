"""`dfft bulk INPUT`: judge a large inventory on Ray (local or a cluster) or in-process; see plugins/bulk.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .options import (
    BULK_BACKENDS,
    BULK_FORMATS,
    EXIT_BAD_REQUEST,
    EXIT_BAD_RULES,
    EXIT_INTERNAL,
    choice,
    err,
    one_of,
    parse_day,
)

# exit codes of `dfft bulk`: 0 every row judged; 3 some rows invalid (bad row / invalid request); 5 some rows failed
# on an engine or worker error (no verdict for them), or the run could not go on; 4 invalid rule files


def register(app: typer.Typer, state: Any) -> None:
    @app.command()
    def bulk(
        input: Path = typer.Argument(
            ..., metavar="INPUT", help="Inventory: CSV, JSONL, Parquet, or OpenLineage run events (JSONL)"
        ),
        output: Optional[Path] = typer.Option(
            None, "--output", "-o", help="Decisions, one per row in input order: .jsonl or .parquet (default: stdout)"
        ),
        fmt: Optional[str] = typer.Option(
            None,
            "--format",
            metavar="FORMAT",
            callback=choice("--format", BULK_FORMATS),
            help=f"{one_of(BULK_FORMATS)} (default: from the file name)",
        ),
        region_map: Optional[Path] = typer.Option(
            None, "--region-map", help="OpenLineage: the region map (default: $DFFT_REGION_MAP), as for Airflow"
        ),
        backend: str = typer.Option(
            "ray",
            "--backend",
            metavar="BACKEND",
            callback=choice("--backend", BULK_BACKENDS),
            help="ray (default) | local (in-process, no Ray)",
        ),
        workers: Optional[int] = typer.Option(
            None, "--workers", min=1, help="Ray workers, one engine each (default: all cores)"
        ),
        ray_address: Optional[str] = typer.Option(
            None, "--ray-address", help="Join this Ray cluster (e.g. ray://head:10001) instead of starting one"
        ),
        object_store_mb: Optional[int] = typer.Option(
            None, "--object-store-mb", min=75, help="Local Ray object store size (default: Ray's)"
        ),
        previous: Optional[Path] = typer.Option(
            None, "--previous", help="A previous output (JSONL or Parquet): report verdicts changed since then"
        ),
        full: bool = typer.Option(False, "--full", help="Write the whole decision of each row, not just the verdict"),
        as_of: Optional[str] = typer.Option(
            None, "--as-of", help="Judge rows without as_of as of this date (default: today)"
        ),
        summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="Also write the summary as JSON"),
        progress: Optional[bool] = typer.Option(
            None, "--progress/--no-progress", help="Progress bar on stderr (default: when stderr is a terminal)"
        ),
    ) -> None:
        """Judge a large inventory (CSV, JSONL, Parquet, OpenLineage events) and stream one decision per row."""
        from datetime import date

        from ..plugins.airflow.regions import RegionMap, RegionMapError
        from ..plugins.bulk import BulkError, make_backend, read_output, read_rows, run, writer_for
        from ..rules import RuleSetError

        day = parse_day(as_of, "--as-of") or date.today()
        try:
            rs = state.ruleset()
        except RuleSetError as e:
            err.print(f"[red]invalid rule files[/]: {e}")
            raise typer.Exit(EXIT_BAD_RULES) from None
        try:
            rmap = RegionMap.resolve(region_map) if (fmt == "openlineage") else None
            kind, rows = read_rows(input, fmt, rmap)
            prev = read_output(previous) if previous else None
            be = make_backend(
                backend,
                state.rules_dir,
                rs.hash,
                day,
                full,
                workers,
                ray_address,
                object_store_mb * 1024 * 1024 if object_store_mb else None,
            )
        except (BulkError, RegionMapError) as e:
            err.print(f"[red]cannot run[/]: {e}")
            raise typer.Exit(EXIT_BAD_REQUEST) from None
        show = sys.stderr.isatty() if progress is None else progress
        writer = writer_for(output, full, sys.stdout)
        try:
            with Progress(
                TextColumn("judging"),
                BarColumn(),
                TextColumn("{task.completed:,} rows"),
                TimeElapsedColumn(),
                console=err,
                disable=not show,
                transient=True,
            ) as bar:
                task = bar.add_task("rows", total=None)
                s = run(rows, writer.write, be, prev, progress=lambda n: bar.advance(task, n))
        except BulkError as e:
            err.print(f"[red]cannot go on[/]: {e}")
            raise typer.Exit(EXIT_INTERNAL) from None
        finally:
            writer.close()
            be.close()
        s.ruleset = rs.hash
        d = s.as_dict()
        if summary_json:
            summary_json.write_text(json.dumps(d, indent=2) + "\n", encoding="utf-8")
        t = Table(title=f"dfft bulk: {input.name} ({kind})")
        t.add_column("")
        t.add_column("")
        t.add_row("rows", f"{s.rows:,} ({s.judged:,} judged, {s.errors:,} errors)")
        t.add_row("verdicts", ", ".join(f"{k} {v:,}" for k, v in sorted(s.verdicts.items())) or "-")
        t.add_row("top rules", "\n".join(f"{r} {n:,}" for r, n in s.rules.most_common(5)) or "-")
        t.add_row("shapes", f"{s.raw_shapes:,} raw, {s.shapes:,} normalised (dedup x{s.dedup_ratio:.1f})")
        if s.changed is not None:
            ch = ", ".join(f"{k} {v:,}" for k, v in s.changes.most_common()) or "none"
            t.add_row("changed since last run", f"{s.changed:,} ({ch}); {s.new:,} new rows, {s.gone:,} gone")
        t.add_row("time", f"{s.seconds:.1f} s on {s.backend} ({s.workers} worker(s))")
        err.print(t)
        for line in s.error_samples[:5]:
            err.print(f"[red]error[/] {line}")
        if s.failed:
            raise typer.Exit(EXIT_INTERNAL)
        if s.errors:
            raise typer.Exit(EXIT_BAD_REQUEST)
