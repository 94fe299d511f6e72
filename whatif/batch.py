"""Judging many requests at once, for the diff and the matrix: in-process by default, or on another backend (the
CLI's `--ray`: plugins/bulk_whatif.py, the same Ray workers as `dfft bulk`).

A batch judge takes the requests and whether they are judged under the scenario's rule set (else the baseline), and
returns, per request in order, its Decision or the RequestError that says why it cannot be judged. Any other failure
raises (fail closed: the analysis has no result, never a verdict for a request that was not judged)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional, Protocol, Union

from ..engine import Decision
from ..engine.request import RequestError
from .context import Engines
from .scenario import Scenario

Judged = Union[Decision, RequestError]
Progress = Optional[Callable[[int], None]]


class BatchJudge(Protocol):
    def __call__(self, requests: list[dict[str, Any]], scenario: bool, progress: Progress = None) -> list[Judged]: ...


def in_process(engines: Engines, sc: Optional[Scenario]) -> BatchJudge:
    """Judge with the analysis's own engines (compiled here, once per rule set)."""
    held: dict[bool, Any] = {}

    def judge(requests: list[dict[str, Any]], scenario: bool, progress: Progress = None) -> list[Judged]:
        key = scenario and sc is not None
        if key not in held:
            held[key] = engines.for_scenario(sc)[1] if key else engines.engine()
        eng = held[key]
        out: list[Judged] = []
        for r in requests:
            try:
                out.append(eng.check(r))
            except RequestError as e:
                out.append(e)
            if progress:
                progress(1)
        return out

    return judge
