"""HTTP API for what-if analyses: a FastAPI APIRouter under /v1/whatif, with the same models as the CLI's --json.

from dfft.api.whatif import create_router
app.include_router(create_router(ruleset))
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Optional, Union

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ..engine import EngineError, RequestError, TransferRequest
from ..engine.core import memo_bytes
from ..engine.request import MAX_STR, IsoDate
from ..rules.model import RuleSet
from ..whatif.context import EnginePool, Engines
from ..whatif.diff import DiffResult, diff
from ..whatif.matrix import Matrix, Profile, all_destinations, load_profiles, matrix
from ..whatif.remedy import RemedyResult, remedy
from ..whatif.scenario import Scenario, ScenarioError, parse_scenario
from ..whatif.timeline import Timeline, timeline
from .models import problem

# Size limits of what-if request bodies (each request in them is a TransferRequest, with its own limits).
MAX_REQUESTS = 1_000  # transfer requests in one diff / report
MAX_CODES = 256  # origins, destinations in a matrix (the corpus names ~40 codes)
MAX_PROFILES = 16  # profiles (built-in names or custom) in a matrix (5 are built in)
MAX_CELLS = 20_000  # origins x profiles x destinations in one matrix (all of the corpus: ~4,000)
MAX_SPAN_DAYS = 100 * 366  # a timeline's span, end - start
# Distinct scenarios that change the law (each compiles rule sets) one API key may send per minute, and compiled
# engines kept by the service (DFFT_WHATIF_SCENARIOS_PER_MINUTE, DFFT_WHATIF_ENGINES in dfft.api.settings).
SCENARIOS_PER_MINUTE = 30
MAX_ENGINES = 16

Code = Annotated[str, StringConstraints(strict=True, max_length=8)]
Name = Annotated[str, StringConstraints(strict=True, max_length=MAX_STR)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WhatIfRequest(In):
    scenario: dict[str, Any] = Field(description="A scenario, as in a scenario file (see examples/)")
    requests: list[dict[str, Any]] = Field(
        max_length=MAX_REQUESTS,
        description=f"Transfer requests, each optionally with an `id` (at most {MAX_REQUESTS:,})",
    )
    as_of: Optional[IsoDate] = Field(None, description="Baseline date for requests without as_of (YYYY-MM-DD)")


class MatrixRequest(In):
    origins: Optional[list[Code]] = Field(None, max_length=MAX_CODES)
    destinations: Optional[list[Code]] = Field(None, max_length=MAX_CODES)
    profiles: Optional[list[Name]] = Field(
        None, max_length=MAX_PROFILES, description="Names of built-in profiles (default: all)"
    )
    custom_profiles: Optional[list[Profile]] = Field(None, max_length=MAX_PROFILES)
    scenario: Optional[dict[str, Any]] = None
    as_of: Optional[IsoDate] = None


class WhatIfTimelineRequest(In):
    """The body of POST /v1/whatif/timeline. (Not `TimelineRequest`: a client generator names the `request` object
    of a `Timeline` that way.)"""

    request: TransferRequest
    start: IsoDate = date(2018, 1, 1)
    end: IsoDate = date(2030, 12, 31)
    scenario: Optional[dict[str, Any]] = None

    @model_validator(mode="after")
    def _span(self) -> WhatIfTimelineRequest:
        if (self.end - self.start).days > MAX_SPAN_DAYS:
            raise ValueError(
                f"the timeline may span at most {MAX_SPAN_DAYS:,} days (100 years); got {self.start} to {self.end}"
            )
        return self


TimelineRequest = WhatIfTimelineRequest  # the name before the OpenAPI contract was made unique


class RemedyRequest(In):
    request: TransferRequest
    scenario: Optional[dict[str, Any]] = None
    max_size: int = Field(4, ge=1, le=6)


class TooManyScenarios(Exception):
    def __init__(self, limit: int, retry_after: float):
        self.limit, self.retry_after = limit, retry_after
        super().__init__(f"at most {limit} distinct scenarios that change the law per minute")


class ScenarioLimiter:
    """At most `limit` distinct scenarios per caller in any `window` seconds (a sliding window). A scenario sent
    again within the window does not count again."""

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._seen: dict[Any, deque[tuple[float, str]]] = {}
        self._lock = threading.Lock()

    def admit(self, caller: Any, scenario: str) -> None:
        """Raises TooManyScenarios when `caller` has sent `limit` other scenarios within the window."""
        if self.limit <= 0:
            return
        now = self.clock()
        with self._lock:
            for c in [c for c, q in self._seen.items() if not q or q[-1][0] <= now - self.window]:
                del self._seen[c]  # callers idle for a window: forget them (memory bounded by active callers)
            q = self._seen.setdefault(caller, deque())
            while q and q[0][0] <= now - self.window:
                q.popleft()
            for i, (_, k) in enumerate(q):
                if k == scenario:
                    del q[i]
                    q.append((now, scenario))
                    return
            if len(q) >= self.limit:
                raise TooManyScenarios(self.limit, q[0][0] + self.window - now)
            q.append((now, scenario))


def _caller(request: Request) -> Any:
    """The API key's id, when the service's key check put it on the request (else one shared bucket)."""
    key = getattr(request.state, "api_key", None)
    return getattr(key, "id", None)


class WhatIfRouter(APIRouter):
    """The what-if router, with its scenario limiter and engine pool reachable as `state` (for tests and benches)."""

    state: dict[str, Any]


def create_router(
    ruleset: Union[RuleSet, Callable[[], RuleSet]],
    backend: str = "durable",
    max_engines: int = MAX_ENGINES,
    dependencies: Optional[Sequence[Any]] = None,
    scenarios_per_minute: int = SCENARIOS_PER_MINUTE,
    caller: Callable[[Request], Any] = _caller,
) -> WhatIfRouter:
    """`ruleset` is the baseline, or a function returning the current one (the service passes its live bundle,
    so what-if analyses follow rule reloads). `dependencies` (e.g. the API-key check) apply to every endpoint.

    Compiled engines are shared in a pool of at most `max_engines` (evicted ones are freed once no analysis uses
    them); each caller (`caller(request)`, the API key's id) may send at most `scenarios_per_minute` distinct
    scenarios that change the law per minute (0: no limit), else 429 with Retry-After."""
    get_ruleset = ruleset if callable(ruleset) else (lambda: ruleset)
    per_engine = max(1 << 20, memo_bytes() // max(1, max_engines))
    pool: dict[str, Any] = {"rs": None, "pool": None}
    pool_lock = threading.Lock()
    limiter = ScenarioLimiter(scenarios_per_minute)

    def current() -> tuple[RuleSet, EnginePool]:
        rs = get_ruleset()
        with pool_lock:
            old = None
            if pool["rs"] is not rs:
                old = pool["pool"]
                pool["rs"], pool["pool"] = rs, EnginePool(backend, max_engines, memo_budget=per_engine)
            out = rs, pool["pool"]
        if old is not None:
            old.close()  # a reload: the old baseline's engines are freed once the analyses using them are done
        return out

    router = WhatIfRouter(prefix="/v1/whatif", tags=["what-if"], dependencies=list(dependencies or []))
    router.state = {"limiter": limiter, "current": current}  # for tests and benches

    def analysis(
        request: Request,
        doc: Optional[dict[str, Any]],
        as_of: Optional[date],
        fn: Callable[[Engines, Optional[Scenario]], Any],
    ) -> Any:
        """Run one analysis on one snapshot of the rule bundle, with its own date, holding leases on the engines
        it uses until it is done."""

        def run() -> Any:
            rs, shared = current()
            with Engines(rs, backend=backend, today=as_of or datetime.now(UTC).date(), pool=shared) as e:
                s = parse_scenario(doc, rs, source="request body: scenario") if doc is not None else None
                if s is not None and not s.law.empty:
                    key = hashlib.sha256(s.law.model_dump_json().encode()).hexdigest()
                    limiter.admit(caller(request), key)
                return fn(e, s)

        return guarded(run)

    def guarded(fn: Any) -> Any:
        try:
            return fn()
        except TooManyScenarios as e:
            return problem(
                429,
                "Too many what-if scenarios",
                f"{e}; retry in {math.ceil(e.retry_after)} s",
                "urn:dfft:problem:too-many-scenarios",
                headers={"Retry-After": str(math.ceil(e.retry_after))},
            )
        except ScenarioError as e:
            return problem(
                422,
                "Invalid scenario",
                str(e),
                "urn:dfft:problem:invalid-scenario",
                errors=[{"message": str(p)} for p in e.problems],
            )
        except RequestError as e:
            return problem(422, "Invalid transfer request", str(e), "urn:dfft:problem:invalid-request", errors=e.errors)
        except ValueError as e:
            return problem(422, "Invalid input", str(e), "urn:dfft:problem:invalid-input")
        except EngineError:
            return problem(
                500,
                "Internal error: no verdict",
                "the engine failed; treat transfers as not allowed",
                "urn:dfft:problem:engine-error",
            )

    @router.post("/diff", operation_id="whatifDiff", response_model=DiffResult)
    def post_diff(body: WhatIfRequest, request: Request):
        return analysis(request, body.scenario, body.as_of, lambda e, s: diff(e, body.requests, s))  # type: ignore[arg-type]

    @router.post("/matrix", operation_id="whatifMatrix", response_model=Matrix)
    def post_matrix(body: MatrixRequest, request: Request):
        def run(e: Engines, s: Optional[Scenario]) -> Matrix:
            profs = body.custom_profiles or load_profiles(None, body.profiles)
            n_o = len(body.origins) if body.origins else len(e.baseline.jurisdictions)
            n_d = len(body.destinations) if body.destinations else len(all_destinations(e.baseline))
            if n_o * len(profs) * n_d > MAX_CELLS:
                raise ValueError(
                    f"the matrix would have {n_o * len(profs) * n_d:,} cells (origins x profiles x "
                    f"destinations); at most {MAX_CELLS:,}: ask for fewer origins, profiles or "
                    "destinations"
                )
            return matrix(e, body.origins, profs, body.destinations, s, body.as_of)

        return analysis(request, body.scenario, body.as_of, run)

    @router.post("/timeline", operation_id="whatifTimeline", response_model=Timeline)
    def post_timeline(body: WhatIfTimelineRequest, request: Request):
        req = body.request.model_dump(mode="json", exclude={"as_of"})
        return analysis(request, body.scenario, None, lambda e, s: timeline(e, req, body.start, body.end, s))

    @router.post("/remedy", operation_id="whatifRemedy", response_model=RemedyResult)
    def post_remedy(body: RemedyRequest, request: Request):
        req = body.request.model_dump(mode="json")
        return analysis(request, body.scenario, None, lambda e, s: remedy(e, req, s, max_size=body.max_size))

    @router.post("/report", operation_id="whatifReport", response_class=HTMLResponse)
    def post_report(body: WhatIfRequest, request: Request):
        from ..whatif.report import render_report

        def run(e: Engines, s: Optional[Scenario]) -> Any:
            assert s is not None
            d = diff(e, body.requests, s)
            return HTMLResponse(render_report(f"What-if: {s.name}", scenario=s, diff=d, ruleset=e.engine().ref))

        return analysis(request, body.scenario, body.as_of, run)

    return router
