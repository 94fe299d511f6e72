"""Destination matrices: for each origin and data profile, the verdict for every destination (and under a scenario)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr

from ..engine.request import RequestError
from ..rules.model import RuleSet
from .batch import BatchJudge, in_process
from .context import Engines
from .scenario import Scenario


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Profile(Out):
    name: str
    title: str
    request: dict[str, Any]


class Cell(Out):
    origin: str
    profile: str
    destination: str
    verdict: str
    rules: tuple[str, ...] = ()  # rules that apply (not merely met)
    obligations: tuple[str, ...] = ()  # gating obligations
    scenario_verdict: Optional[str] = None
    scenario_rules: tuple[str, ...] = ()


class Matrix(Out):
    scenario: Optional[str]
    as_of: date
    origins: tuple[str, ...]
    destinations: tuple[str, ...]
    profiles: tuple[Profile, ...]
    cells: tuple[Cell, ...]
    seconds: float
    checks: int
    _index: Optional[dict[tuple[str, str, str], Cell]] = PrivateAttr(default=None)

    def cell(self, origin: str, profile: str, destination: str) -> Optional[Cell]:
        """The cell of (origin, profile, destination), or None (an origin is not judged against itself); O(1)."""
        if self._index is None:
            self._index = {(c.origin, c.profile, c.destination): c for c in self.cells}
        return self._index.get((origin, profile, destination))


def load_profiles(path: Optional[Path | str] = None, names: Optional[list[str]] = None) -> list[Profile]:
    src = Path(path) if path else Path(str(resources.files("dfft.whatif") / "profiles.yaml"))
    try:
        doc = yaml.safe_load(src.read_text(encoding="utf-8"))
        profiles = [Profile(name=n, title=p.get("title", n), request=p["request"]) for n, p in doc["profiles"].items()]
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{src}: expected `profiles: {{name: {{title, request: {{...}}}}}}`: {e}") from None
    if names:
        known = {p.name: p for p in profiles}
        missing = [n for n in names if n not in known]
        if missing:
            raise ValueError(f"unknown profile(s) {missing}; expected some of {sorted(known)}")
        profiles = [known[n] for n in names]
    return profiles


def all_destinations(rs: RuleSet) -> list[str]:
    """Covered jurisdictions and every code named in a group or list (bloc members judged as the bloc)."""
    alias_of = {m: bloc for bloc, ms in rs.aliases.items() for m in ms}
    codes = set(rs.jurisdictions)
    for lst in [*rs.groups.values(), *(lst for j in rs.jurisdictions.values() for lst in j.lists.values())]:
        codes |= {alias_of.get(m.code, m.code) for m in lst.members}
    return sorted(codes)


def matrix(
    engines: Engines,
    origins: Optional[list[str]] = None,
    profiles: Optional[list[Profile]] = None,
    destinations: Optional[list[str]] = None,
    sc: Optional[Scenario] = None,
    as_of: Optional[date] = None,
    progress: Optional[Callable[[int], None]] = None,
    judge: Optional[BatchJudge] = None,
) -> Matrix:
    """The verdict of every origin x profile x destination (an origin is not judged against itself), under the
    baseline and, with `sc`, under the scenario. `judge` judges the cells' requests in batches (default: in-process,
    with `engines`; the CLI's --ray passes the Ray backend's); `progress` is called with the number of checks done."""
    rs = engines.baseline
    origins = [o.upper() for o in origins] if origins else sorted(rs.jurisdictions)
    unknown = [o for o in origins if o not in rs.jurisdictions]
    if unknown:
        raise RequestError(
            [
                {
                    "field": "origin",
                    "message": f"no rule set for {unknown}; covered jurisdictions: "
                    f"{', '.join(sorted(rs.jurisdictions))}",
                    "valid": sorted(rs.jurisdictions),
                }
            ]
        )
    profiles = profiles or load_profiles()
    dests = [d.upper() for d in destinations] if destinations else all_destinations(rs)
    day = as_of or engines.today
    if judge is None:
        judge = in_process(engines, sc)
        engines.engine()  # compiled before the clock starts
    t0 = time.perf_counter()
    keys: list[tuple[str, Profile, str]] = [(o, p, d) for o in origins for p in profiles for d in dests if d != o]
    reqs = [{**p.request, "origin": o, "destination": d, "as_of": p.request.get("as_of", day)} for o, p, d in keys]
    decisions: list[Any] = judge(reqs, False, progress)
    for dec in decisions:
        if isinstance(dec, RequestError):  # a profile that is not a valid request: no matrix (as in-process)
            raise dec
    scenario_decisions: list[Any] = [None] * len(reqs)
    if sc is not None:
        srs = sc.apply_law(rs)
        scenario_decisions = judge([sc.apply_request(r, srs, day) for r in reqs], True, progress)
        for dec in scenario_decisions:
            if isinstance(dec, RequestError):
                raise dec
    cells: list[Cell] = []
    for (o, p, d), dec, s in zip(keys, decisions, scenario_decisions, strict=True):
        extra: dict[str, Any] = {}
        if s is not None:
            extra = dict(
                scenario_verdict=s.verdict,
                scenario_rules=tuple(f.rule_id for f in s.findings if f.status == "applies"),
            )
        cells.append(
            Cell(
                origin=o,
                profile=p.name,
                destination=d,
                verdict=dec.verdict,
                rules=tuple(f.rule_id for f in dec.findings if f.status == "applies"),
                obligations=tuple(ob.id for ob in dec.obligations if ob.kind == "gating"),
                **extra,
            )
        )
    return Matrix(
        scenario=sc.name if sc else None,
        as_of=day,
        origins=tuple(origins),
        destinations=tuple(dests),
        profiles=tuple(profiles),
        cells=tuple(cells),
        seconds=round(time.perf_counter() - t0, 3),
        checks=len(reqs) * (2 if sc is not None else 1),
    )
