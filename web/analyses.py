"""Running the what-if analyses for the workbench, storing them with their inputs, and comparing a re-run (after the
law changed) with the saved result."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Optional

import yaml

from ..api.whatif import MAX_CELLS
from ..rules.model import RuleSet
from ..whatif.context import EnginePool, Engines
from ..whatif.diff import DiffResult, diff
from ..whatif.matrix import Matrix, all_destinations, load_profiles, matrix
from ..whatif.remedy import RemedyResult, remedy
from ..whatif.scenario import Scenario, parse_scenario
from ..whatif.timeline import Timeline, timeline

KINDS = ("diff", "matrix", "timeline", "remedy")
MODELS: dict[str, Any] = {"diff": DiffResult, "matrix": Matrix, "timeline": Timeline, "remedy": RemedyResult}
MAX_DIFF_ROWS = 5_000


def _date(v: Any) -> Optional[date]:
    return date.fromisoformat(v) if isinstance(v, str) and v else v if isinstance(v, date) else None


def run(kind: str, params: dict[str, Any], rs: RuleSet, pool: EnginePool) -> Any:
    """The analysis `kind` on `params` (JSON-able: inventory rows, scenario document, request, dates) with the
    baseline `rs`. Raises ScenarioError, RequestError or ValueError for bad input."""
    as_of = _date(params.get("as_of"))
    with Engines(rs, today=as_of or datetime.now(UTC).date(), pool=pool) as e:
        doc = params.get("scenario")
        sc: Optional[Scenario] = parse_scenario(doc, rs, source="scenario") if doc else None
        if kind == "diff":
            if sc is None:
                raise ValueError("choose a scenario to compare the inventory with")
            rows = params.get("rows") or []
            if len(rows) > MAX_DIFF_ROWS:
                raise ValueError(f"at most {MAX_DIFF_ROWS:,} transfers in one comparison")
            return diff(e, rows, sc)
        if kind == "matrix":
            profs = load_profiles(None, params.get("profiles") or None)
            origins = params.get("origins") or None
            dests = params.get("destinations") or None
            n = len(origins or rs.jurisdictions) * len(profs) * len(dests or all_destinations(rs))
            if n > MAX_CELLS:
                raise ValueError(f"the matrix would have {n:,} cells; at most {MAX_CELLS:,}")
            return matrix(e, origins, profs, dests, sc, as_of)
        if kind == "timeline":
            start, end = _date(params.get("start")) or date(2018, 1, 1), _date(params.get("end")) or date(2030, 12, 31)
            if (end - start).days > 100 * 366:
                raise ValueError("a timeline may span at most 100 years")
            return timeline(e, params["request"], start, end, sc)
        if kind == "remedy":
            return remedy(e, params["request"], sc, max_size=int(params.get("max_size") or 4))
    raise ValueError(f"unknown analysis {kind!r}")


def load(kind: str, result: dict[str, Any]) -> Any:
    return MODELS[kind].model_validate(result)


def scenario_doc(text: str) -> Any:
    return yaml.safe_load(text)


def changes(kind: str, before: Any, after: Any) -> list[dict[str, str]]:
    """What a re-run on a new bundle changed: one entry per transfer / cell / date range whose verdict moved."""
    out: list[dict[str, str]] = []
    if kind == "diff":
        old = {x.id: x for x in before.items}
        for x in after.items:
            o = old.get(x.id)
            if o is None:
                continue
            for side in ("baseline", "scenario"):
                if getattr(o, side) != getattr(x, side):
                    out.append(
                        {
                            "what": f"{x.id} ({x.path})",
                            "side": side,
                            "before": getattr(o, side),
                            "after": getattr(x, side),
                        }
                    )
    elif kind == "matrix":
        old = {(c.origin, c.profile, c.destination): c for c in before.cells}
        for c in after.cells:
            o = old.get((c.origin, c.profile, c.destination))
            if o is None:
                continue
            what = f"{c.origin} → {c.destination} ({c.profile})"
            if o.verdict != c.verdict:
                out.append({"what": what, "side": "baseline", "before": o.verdict, "after": c.verdict})
            if (o.scenario_verdict or "") != (c.scenario_verdict or ""):
                out.append(
                    {
                        "what": what,
                        "side": "scenario",
                        "before": o.scenario_verdict or "-",
                        "after": c.scenario_verdict or "-",
                    }
                )
    elif kind == "timeline":

        def spans(t: Any) -> list[tuple[str, str]]:
            return [(f"{s.start} – {s.end or t.end}", s.verdict) for s in t.segments]

        if spans(before) != spans(after):
            out.append(
                {
                    "what": "timeline",
                    "side": "baseline",
                    "before": "; ".join(f"{a}: {v}" for a, v in spans(before)),
                    "after": "; ".join(f"{a}: {v}" for a, v in spans(after)),
                }
            )
    elif kind == "remedy":
        if before.verdict != after.verdict:
            out.append({"what": "verdict", "side": "baseline", "before": before.verdict, "after": after.verdict})
        b = sorted(" + ".join(r.safeguards) for r in before.remedies)
        a = sorted(" + ".join(r.safeguards) for r in after.remedies)
        if a != b:
            out.append(
                {"what": "remedies", "side": "baseline", "before": "; ".join(b) or "-", "after": "; ".join(a) or "-"}
            )
    return out
