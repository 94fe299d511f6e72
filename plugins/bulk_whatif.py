"""The what-if diff and the destination matrix on the `dfft bulk` backends (`dfft whatif --ray`, `dfft matrix --ray`).

Each worker (a Ray actor, or the driver with the local backend) holds two engines: the baseline bundle, loaded from
the same directory as the driver's, and the scenario's rule set (the scenario applied to that baseline); both hashes
are checked against the driver's before any request is judged. The driver deduplicates the requests as `dfft bulk`
does -- raw shape, then normalised key -- so each normalised shape is judged once, on its first request in order, and
its decision is fanned back out. That is what one in-process Engine does with its memo, so the diff and the matrix
are identical to in-process evaluation (tests/bulk/test_bulk_whatif.py). A request that cannot be judged comes back
as its RequestError (the diff reports it per transfer); an engine or worker failure raises EngineError: no result,
never a verdict for a request that was not judged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Optional

from ..engine import Decision, Engine, EngineError, RequestError
from ..rules import RuleSet
from ..whatif.batch import BatchJudge, Judged, Progress
from ..whatif.scenario import Scenario
from .bulk import BATCH, BulkError, Judge, make_backend, shape_of

WHICH = ("baseline", "scenario")


class WhatifJudge(Judge):
    """A bulk Judge with a second engine for the scenario's rule set; errors come back structured."""

    def __init__(
        self,
        rules_dir: Optional[str],
        expected_hash: str,
        today: str,
        full: bool,
        scenario: Optional[Scenario] = None,
        scenario_hash: Optional[str] = None,
    ):
        super().__init__(rules_dir, expected_hash, today, full)
        self.engines = {"baseline": self.engine}
        if scenario is not None:
            srs = scenario.apply_law(self.engine.ruleset)
            se = Engine(srs)
            if se.hash != scenario_hash:
                raise BulkError(
                    f"the scenario's rule set is {se.hash[:12]} on this worker but {str(scenario_hash)[:12]} on the "
                    "driver: every worker must see the same bundle"
                )
            self.engines["scenario"] = se

    @staticmethod
    def _problem(e: Exception) -> str:
        if isinstance(e, RequestError):
            return json.dumps({"errors": e.errors}, default=str)
        return json.dumps({"fatal": f"{type(e).__name__}: {e}"})

    def _normalise(self, which: str, requests: list[dict[str, Any]]) -> list[tuple[bool, str]]:
        out: list[tuple[bool, str]] = []
        for r in requests:
            try:
                out.append((True, self.engines[which].normalise(r, self.today).key))
            except Exception as e:  # RequestError: the request's fault; anything else fails the analysis
                out.append((False, self._problem(e)))
        return out

    def _judge(self, which: str, requests: list[dict[str, Any]]) -> list[tuple[bool, str]]:
        out: list[tuple[bool, str]] = []
        for r in requests:
            try:
                out.append((True, self.engines[which].check(r, self.today).model_dump_json()))
            except Exception as e:
                out.append((False, self._problem(e)))
        return out

    def normalise_baseline(self, requests: list[dict[str, Any]]) -> list[tuple[bool, str]]:
        return self._normalise("baseline", requests)

    def normalise_scenario(self, requests: list[dict[str, Any]]) -> list[tuple[bool, str]]:
        return self._normalise("scenario", requests)

    def judge_baseline(self, requests: list[dict[str, Any]]) -> list[tuple[bool, str]]:
        return self._judge("baseline", requests)

    def judge_scenario(self, requests: list[dict[str, Any]]) -> list[tuple[bool, str]]:
        return self._judge("scenario", requests)

    def close(self) -> None:
        for e in self.engines.values():
            e.close()


def _failure(payload: str) -> Exception:
    """The exception a worker's (False, payload) stands for."""
    try:
        doc = json.loads(payload)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("errors"), list):
        return RequestError(doc["errors"])
    reason = doc.get("fatal") if isinstance(doc, dict) else payload  # a worker that died: its own reason
    return EngineError(f"no result for the analysis (treat as not allowed): {reason}")


class Backend:
    """A bulk backend (local or Ray) with WhatifJudge workers, as a BatchJudge for whatif.diff / whatif.matrix."""

    def __init__(
        self,
        kind: str,
        rules_dir: Optional[Path],
        baseline: RuleSet,
        today: date,
        scenario: Optional[Scenario] = None,
        scenario_hash: Optional[str] = None,
        workers: Optional[int] = None,
        address: Optional[str] = None,
        batch: int = BATCH,
    ):
        self.batch = batch
        self.scenario = scenario
        self.dedup = {"requests": 0, "raw_shapes": 0, "normalised_shapes": 0}
        self.backend = make_backend(
            kind,
            rules_dir,
            baseline.hash,
            today,
            False,
            workers,
            address,
            judge_class=WhatifJudge,
            judge_args=(scenario, scenario_hash),
        )
        self.workers = self.backend.workers
        self.name = self.backend.name

    def __call__(self, requests: list[dict[str, Any]], scenario: bool, progress: Progress = None) -> list[Judged]:
        which = WHICH[1] if scenario else WHICH[0]
        if scenario and self.scenario is None:
            raise BulkError("no scenario was given to the backend")
        shapes = [shape_of(r) for r in requests]
        # round 1: each new raw shape normalised to its key (or why it cannot be judged)
        raw: dict[str, dict[str, Any]] = {}
        for r, sh in zip(requests, shapes, strict=True):
            raw.setdefault(sh, r)
        order = list(raw)
        key_of: dict[str, tuple[bool, str]] = {}
        for i, res in self.backend.map(f"normalise_{which}", self._batches([raw[k] for k in order])):
            for sh, v in zip(order[i * self.batch : (i + 1) * self.batch], res, strict=True):
                key_of[sh] = v
        # round 2: each normalised key judged once, on its first request in order
        first: dict[str, dict[str, Any]] = {}
        fan: dict[str, int] = {}
        for r, sh in zip(requests, shapes, strict=True):
            ok, key = key_of[sh]
            if ok:
                first.setdefault(key, r)
                fan[key] = fan.get(key, 0) + 1
        korder = list(first)
        result_of: dict[str, Judged] = {}
        for i, res in self.backend.map(f"judge_{which}", self._batches([first[k] for k in korder])):
            keys = korder[i * self.batch : (i + 1) * self.batch]
            for k, (ok, payload) in zip(keys, res, strict=True):
                if not ok:
                    e = _failure(payload)
                    if not isinstance(e, RequestError):
                        raise e
                    result_of[k] = e
                else:
                    result_of[k] = Decision.model_validate_json(payload)
            if progress:
                progress(sum(fan[k] for k in keys))
        self.dedup["requests"] += len(requests)
        self.dedup["raw_shapes"] += len(order)
        self.dedup["normalised_shapes"] += len(korder)
        out: list[Judged] = []
        for sh in shapes:
            ok, key = key_of[sh]
            if ok:
                out.append(result_of[key])
                continue
            e = _failure(key)
            if not isinstance(e, RequestError):
                raise e
            out.append(e)
            if progress:
                progress(1)
        return out

    def _batches(self, items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        return [items[i : i + self.batch] for i in range(0, len(items), self.batch)]

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def batch_judge(
    kind: str,
    rules_dir: Optional[Path],
    baseline: RuleSet,
    today: date,
    scenario: Optional[Scenario] = None,
    hash_of: Optional[Callable[[RuleSet], str]] = None,
    workers: Optional[int] = None,
    address: Optional[str] = None,
) -> Backend:
    """A Backend judging under `baseline` (loaded from `rules_dir` on every worker) and, with `scenario`, under the
    scenario applied to it. Close it when done (or use it in a `with` block)."""
    sh = None
    if scenario is not None:
        srs = scenario.apply_law(baseline)
        sh = hash_of(srs) if hash_of else srs.hash
    return Backend(kind, rules_dir, baseline, today, scenario, sh, workers, address)


__all__ = ["Backend", "BatchJudge", "WhatifJudge", "batch_judge"]
