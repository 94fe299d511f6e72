"""A Python client for the dfft service, with the service's own models.

    from dfft.client import Client
    with Client("http://127.0.0.1:8000", api_key="dfft_...") as c:
        d = c.check(origin="JP", destination="VN", data_categories=["personal"], subjects=1000)
        if d.verdict != "allowed":
            ...

Every failure raises `ApiError` carrying the service's problem details (status, title, detail, errors). A 5xx
means no verdict: treat the transfer as not allowed. `ApiError.retryable` says whether trying again may help.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Optional

import httpx

from .api.models import (
    BatchResponse,
    DecisionPage,
    DecisionRecord,
    Health,
    JurisdictionSummary,
    Problem,
    ReloadResult,
    RulesetInfo,
)
from .engine.decision import Decision
from .engine.request import TransferRequest
from .rules.model import Jurisdiction

__all__ = ["ApiError", "Client", "Decision", "TransferRequest", "BatchResponse", "DecisionRecord"]


class ApiError(Exception):
    """The service answered with an error (RFC 9457 problem details), or could not be reached (status 0)."""

    def __init__(self, problem: Problem):
        self.problem = problem
        self.status = problem.status
        super().__init__(f"{problem.status} {problem.title}" + (f": {problem.detail}" if problem.detail else ""))

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.problem.errors or []

    @property
    def retryable(self) -> bool:
        return self.status in (0, 429, 502, 503, 504)


def _request_dict(request: Any, fields: dict[str, Any]) -> dict[str, Any]:
    if request is None:
        request = fields
    if isinstance(request, TransferRequest):
        return request.model_dump(mode="json", exclude_defaults=True)
    return TransferRequest.model_validate(request).model_dump(mode="json", exclude_defaults=True)


class Client:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: Optional[str] = None,
        timeout: float = 30.0,
        transport: Optional[httpx.BaseTransport] = None,
    ):
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)
        self.last_decision_id: Optional[str] = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing -----------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise ApiError(Problem(title="Service unreachable", status=0, detail=f"{type(e).__name__}: {e}")) from e
        if r.status_code >= 400:
            try:
                p = Problem.model_validate(r.json())
            except (ValueError, json.JSONDecodeError):
                p = Problem(title=r.reason_phrase or "Error", status=r.status_code, detail=r.text[:500] or None)
            raise ApiError(p)
        return r

    # -- checks -------------------------------------------------------------------------------------------------
    def check(self, request: Any = None, allow_other_date: bool = False, **fields: Any) -> Decision:
        """Judge one transfer: `check(TransferRequest(...))`, `check({...})` or `check(origin=..., ...)`. The audit
        log id of the decision is kept in `last_decision_id`. An `as_of` other than today is refused unless
        `allow_other_date` (a what-if, recorded as such in the audit log)."""
        params = {"allow_other_date": "true"} if allow_other_date else None
        r = self._call("POST", "/v1/check", json=_request_dict(request, fields), params=params)
        self.last_decision_id = r.headers.get("Dfft-Decision-Id")
        return Decision.model_validate_json(r.content)

    def check_batch(self, requests: Iterable[Any], allow_other_date: bool = False) -> BatchResponse:
        """Judge many transfers (at most the service's batch limit, 10,000 by default); results in order."""
        body = {"requests": [_request_dict(q, {}) for q in requests]}
        params = {"allow_other_date": "true"} if allow_other_date else None
        return BatchResponse.model_validate_json(
            self._call("POST", "/v1/check/batch", json=body, params=params).content
        )

    # -- rule sets ----------------------------------------------------------------------------------------------
    def jurisdictions(self) -> list[JurisdictionSummary]:
        return [JurisdictionSummary.model_validate(j) for j in self._call("GET", "/v1/jurisdictions").json()]

    def rules(self, code: str) -> Jurisdiction:
        return Jurisdiction.model_validate_json(self._call("GET", f"/v1/jurisdictions/{code}/rules").content)

    def ruleset(self) -> RulesetInfo:
        return RulesetInfo.model_validate_json(self._call("GET", "/v1/rulesets/current").content)

    def reload(self) -> ReloadResult:
        """Reload the rule bundle (admin key). A refused bundle raises ApiError (422); the old one keeps serving."""
        return ReloadResult.model_validate_json(self._call("POST", "/v1/rulesets/reload").content)

    # -- audit log ----------------------------------------------------------------------------------------------
    @staticmethod
    def _filters(filters: dict[str, Any]) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in filters.items() if v is not None}

    def decisions(self, limit: int = 100, **filters: Any) -> DecisionPage:
        """One page of the audit log (admin key). Filters: verdict, origin, destination, caller, request_hash,
        ruleset_hash, batch_id, since, until, after."""
        params = {**self._filters(filters), "limit": limit}
        return DecisionPage.model_validate_json(self._call("GET", "/v1/decisions", params=params).content)

    def export_decisions(self, **filters: Any) -> Iterator[DecisionRecord]:
        """Every matching audit record, streamed as JSON Lines (admin key)."""
        try:
            with self._http.stream("GET", "/v1/decisions/export", params=self._filters(filters)) as r:
                if r.status_code >= 400:
                    r.read()
                    raise ApiError(Problem.model_validate(r.json()))
                for line in r.iter_lines():
                    if line.strip():
                        yield DecisionRecord.model_validate_json(line)
        except httpx.HTTPError as e:
            raise ApiError(Problem(title="Service unreachable", status=0, detail=f"{type(e).__name__}: {e}")) from e

    # -- probes -------------------------------------------------------------------------------------------------
    def health(self) -> Health:
        return Health.model_validate_json(self._call("GET", "/healthz").content)

    def ready(self) -> bool:
        try:
            self._call("GET", "/readyz")
            return True
        except ApiError:
            return False
