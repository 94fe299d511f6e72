"""Destination matrices: for each origin and data profile, the verdict for every destination (and under a scenario)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ConfigDict

from ..engine.request import RequestError
from ..rules.model import RuleSet
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

    def cell(self, origin: str, profile: str, destination: str) -> Optional[Cell]:
        for c in self.cells:
            if (c.origin, c.profile, c.destination) == (origin, profile, destination):
                return c
        return None


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
) -> Matrix:
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
    base = engines.engine()
    srs, seng = engines.for_scenario(sc) if sc else (rs, None)
    cells: list[Cell] = []
    t0 = time.perf_counter()
    checks = 0
    for o in origins:
        for p in profiles:
            for d in dests:
                if d == o:
                    continue
                req = {**p.request, "origin": o, "destination": d, "as_of": p.request.get("as_of", day)}
                dec = base.check(req)
                checks += 1
                extra: dict[str, Any] = {}
                if seng is not None and sc is not None:
                    s = seng.check(sc.apply_request(req, srs, day))
                    checks += 1
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
            if progress:
                progress(len(dests))
    return Matrix(
        scenario=sc.name if sc else None,
        as_of=day,
        origins=tuple(origins),
        destinations=tuple(dests),
        profiles=tuple(profiles),
        cells=tuple(cells),
        seconds=round(time.perf_counter() - t0, 3),
        checks=checks,
    )
