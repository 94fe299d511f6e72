"""HTTP API for what-if analyses: a FastAPI APIRouter under /v1/whatif, with the same models as the CLI's --json.

    from dfft.api.whatif import create_router
    app.include_router(create_router(ruleset))
"""
from __future__ import annotations

import threading
from datetime import date
from typing import Any, Callable, Optional, Sequence, Union

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from ..engine import EngineError, RequestError, TransferRequest
from ..rules.model import RuleSet
from ..whatif.context import Engines
from ..whatif.diff import DiffResult, diff
from ..whatif.matrix import Matrix, Profile, load_profiles, matrix
from ..whatif.remedy import RemedyResult, remedy
from ..whatif.scenario import Scenario, ScenarioError, parse_scenario
from ..whatif.timeline import Timeline, timeline
from .models import problem


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WhatIfRequest(In):
    scenario: dict[str, Any] = Field(description="A scenario, as in a scenario file (see examples/)")
    requests: list[dict[str, Any]] = Field(description="Transfer requests, each optionally with an `id`")
    as_of: Optional[date] = Field(None, description="Baseline date for requests without as_of")


class MatrixRequest(In):
    origins: Optional[list[str]] = None
    destinations: Optional[list[str]] = None
    profiles: Optional[list[str]] = Field(None, description="Names of built-in profiles (default: all)")
    custom_profiles: Optional[list[Profile]] = None
    scenario: Optional[dict[str, Any]] = None
    as_of: Optional[date] = None


class TimelineRequest(In):
    request: TransferRequest
    start: date = date(2018, 1, 1)
    end: date = date(2030, 12, 31)
    scenario: Optional[dict[str, Any]] = None


class RemedyRequest(In):
    request: TransferRequest
    scenario: Optional[dict[str, Any]] = None
    max_size: int = Field(4, ge=1, le=6)


def create_router(ruleset: Union[RuleSet, Callable[[], RuleSet]], backend: str = "durable", max_engines: int = 16,
                  dependencies: Optional[Sequence[Any]] = None) -> APIRouter:
    """`ruleset` is the baseline, or a function returning the current one (the service passes its live bundle,
    so what-if analyses follow rule reloads). `dependencies` (e.g. the API-key check) apply to every endpoint."""
    get_ruleset = ruleset if callable(ruleset) else (lambda: ruleset)
    pool: dict[str, Any] = {"rs": None, "engines": None}
    pool_lock = threading.Lock()

    def current() -> tuple[RuleSet, Engines]:
        rs = get_ruleset()
        with pool_lock:
            if pool["rs"] is not rs:
                pool["rs"], pool["engines"] = rs, Engines(rs, backend=backend, limit=max_engines)
            return rs, pool["engines"]

    router = APIRouter(prefix="/v1/whatif", tags=["what-if"], dependencies=list(dependencies or []))

    def sc(doc: Optional[dict[str, Any]]) -> Optional[Scenario]:
        return parse_scenario(doc, current()[0], source="request body: scenario") if doc is not None else None

    def guarded(fn: Any) -> Any:
        try:
            return fn()
        except ScenarioError as e:
            return problem(422, "Invalid scenario", str(e), errors=[str(p) for p in e.problems])
        except RequestError as e:
            return problem(422, "Invalid transfer request", str(e), errors=e.errors)
        except ValueError as e:
            return problem(422, "Invalid input", str(e))
        except EngineError:
            return problem(500, "Internal error: no verdict", "the engine failed; treat transfers as not allowed")

    def _engines(as_of: Optional[date]) -> Engines:
        ruleset, engines = current()
        if as_of is None:
            return engines
        e = Engines(ruleset, backend=backend, limit=max_engines, today=as_of)
        e._engines = engines._engines  # share compiled engines; only the default date differs
        return e

    @router.post("/diff", response_model=DiffResult)
    def post_diff(body: WhatIfRequest):
        return guarded(lambda: diff(_engines(body.as_of), body.requests, sc(body.scenario)))  # type: ignore[arg-type]

    @router.post("/matrix", response_model=Matrix)
    def post_matrix(body: MatrixRequest):
        def run() -> Matrix:
            profs = body.custom_profiles or load_profiles(None, body.profiles)
            return matrix(current()[1], body.origins, profs, body.destinations, sc(body.scenario), body.as_of)
        return guarded(run)

    @router.post("/timeline", response_model=Timeline)
    def post_timeline(body: TimelineRequest):
        req = body.request.model_dump(mode="json", exclude={"as_of"})
        return guarded(lambda: timeline(current()[1], req, body.start, body.end, sc(body.scenario)))

    @router.post("/remedy", response_model=RemedyResult)
    def post_remedy(body: RemedyRequest):
        req = body.request.model_dump(mode="json")
        return guarded(lambda: remedy(current()[1], req, sc(body.scenario), max_size=body.max_size))

    @router.post("/report", response_class=HTMLResponse)
    def post_report(body: WhatIfRequest):
        from ..whatif.report import render_report

        def run() -> Any:
            s = sc(body.scenario)
            assert s is not None
            engines = _engines(body.as_of)
            d = diff(engines, body.requests, s)
            return HTMLResponse(render_report(f"What-if: {s.name}", scenario=s, diff=d, ruleset=engines.engine().ref))
        return guarded(run)

    return router
