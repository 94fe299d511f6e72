"""A self-contained HTML report (jinja2): no scripts, no CDN; charts are inline SVG, colours CSS; every finding links
to its citation URL. Open it in a browser or print it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Optional

from jinja2 import Environment, PackageLoader, select_autoescape

from .diff import DiffResult
from .matrix import Matrix
from .remedy import RemedyResult
from .scenario import Scenario
from .timeline import Timeline

COLOURS = {"allowed": "#2e7d32", "conditional": "#f9a825", "blocked": "#c62828", "-": "#9e9e9e"}
_env = Environment(
    loader=PackageLoader("dfft.whatif", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _timeline_bars(t: Timeline, segments: Any, width: int = 760) -> list[dict[str, Any]]:
    span = max((t.end - t.start).days, 1)
    bars = []
    for s in segments:
        end = min(s.end or t.end, t.end)
        x = (s.start - t.start).days / span * width
        w = max((end - s.start).days / span * width, 2)
        bars.append({"x": round(x, 1), "w": round(w, 1), "seg": s, "colour": COLOURS[s.verdict]})
    return bars


def render_report(
    title: str,
    *,
    scenario: Optional[Scenario] = None,
    diff: Optional[DiffResult] = None,
    matrix: Optional[Matrix] = None,
    timeline: Optional[Timeline] = None,
    remedy: Optional[RemedyResult] = None,
    ruleset: Optional[Any] = None,
    generated: Optional[datetime] = None,
) -> str:
    heat = None
    if matrix is not None:
        cells = {(c.origin, c.profile, c.destination): c for c in matrix.cells}
        heat = {"cells": cells, "size": 22, "label": 130}
    timelines = []
    if timeline is not None:
        timelines.append(("baseline", _timeline_bars(timeline, timeline.segments)))
        if timeline.scenario_segments:
            timelines.append((timeline.scenario or "scenario", _timeline_bars(timeline, timeline.scenario_segments)))
    return _env.get_template("report.html.j2").render(
        title=title,
        scenario=scenario,
        diff=diff,
        matrix=matrix,
        heat=heat,
        timeline=timeline,
        timelines=timelines,
        remedy=remedy,
        ruleset=ruleset,
        colours=COLOURS,
        generated=(generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
    )
