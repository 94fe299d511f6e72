"""A Python client for the dfft service, with the service's own models.

    from dfft.client import Client
    with Client("http://127.0.0.1:8000", api_key="dfft_...") as c:
        d = c.check(origin="JP", destination="VN", data_categories=["personal"], subjects=1000)
        if d.verdict != "allowed":
            ...

Every failure raises `ApiError` carrying the service's problem details (status, title, detail, errors). A 5xx
means no verdict: treat the transfer as not allowed. `ApiError.retryable` says whether trying again may help.

One HTTP path (`Client._call`) serves this client and `dfft.guard` in API mode: failures that may pass are retried
with exponential backoff and jitter (`retries` times): a connection that could not be made or was dropped before an
answer, and 429 / 502 / 503 / 504, after the server's `Retry-After` when it sends one (capped by `max_backoff`).
The decision comes back with its audit-log id (`CheckedDecision.decision_id`), not in state shared by the client.

Needs only `pip install dfft` (httpx): no server dependency.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Optional

import httpx

from .api.models import (
    BatchResponse,
    CheckedDecision,
    DecisionPage,
    DecisionRecord,
    Health,
    JurisdictionSummary,
    Problem,
    ReloadResult,
    RulesetInfo,
    Vocabulary,
)
from .engine.decision import Decision
from .engine.request import TransferRequest
from .rules.model import Jurisdiction

__all__ = [
    "ApiError",
    "BatchResponse",
    "CheckedDecision",
    "Client",
    "Decision",
    "DecisionRecord",
    "TransferRequest",
]

RETRY_STATUS = (429, 502, 503, 504)
# failures before the server could have answered: safe to send again
RETRY_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.PoolTimeout)


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
        return self.status == 0 or self.status in RETRY_STATUS


def retry_after(r: httpx.Response) -> Optional[float]:
    """The response's Retry-After in seconds (delta-seconds form), or None."""
    value = r.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def unreachable(url: str, e: Exception) -> Problem:
    return Problem(title="Service unreachable", status=0, detail=f"{url}: {type(e).__name__}: {e}")


def problem_of(r: httpx.Response) -> Problem:
    """The problem details of an error response (or one made up from its status and text)."""
    try:
        return Problem.model_validate(r.json())
    except (ValueError, json.JSONDecodeError):
        return Problem(title=r.reason_phrase or "Error", status=r.status_code, detail=r.text[:500] or None)


def _labelled(request: Any, labels: Optional[dict[str, str]]) -> dict[str, Any]:
    own = request.get("labels") if isinstance(request, dict) else None
    if isinstance(request, dict) and "labels" in request:
        request = {k: v for k, v in request.items() if k != "labels"}
    body = _request_dict(request, {})
    merged = {**(labels or {}), **(own or {})}
    if merged:
        body["labels"] = merged
    return body


def _request_dict(request: Any, fields: dict[str, Any]) -> dict[str, Any]:
    if request is None:
        request = fields
    if isinstance(request, TransferRequest):
        return request.model_dump(mode="json", exclude_defaults=True)
    return TransferRequest.model_validate(request).model_dump(mode="json", exclude_defaults=True)


class Client:
    """`retries`: how many times a retryable failure is tried again (0: never); `backoff`: the first wait in seconds,
    doubled each time, with jitter, at most `max_backoff` (which also caps a server's Retry-After)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: Optional[str] = None,
        timeout: float = 30.0,
        transport: Optional[httpx.BaseTransport] = None,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        api_key_header: str = "Authorization",
        user_agent: str = "dfft-client",
    ):
        headers = {"Accept": "application/json", "User-Agent": user_agent}
        if api_key:
            if api_key_header.lower() == "authorization":
                headers["Authorization"] = f"Bearer {api_key}"
            else:
                headers[api_key_header] = api_key
        self.base_url = base_url.rstrip("/")
        self.retries, self.backoff, self.max_backoff = max(0, retries), backoff, max_backoff
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing -----------------------------------------------------------------------------------------------
    def _wait(self, attempt: int, server: Optional[float]) -> None:
        delay = server if server is not None else self.backoff * 2**attempt * (0.5 + random.random() / 2)
        time.sleep(min(delay, self.max_backoff))

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One request, retried on a retryable failure; ApiError (with the problem details) on any error."""
        attempt = 0
        while True:
            try:
                r = self._http.request(method, path, **kw)
            except RETRY_ERRORS as e:
                if attempt < self.retries:
                    self._wait(attempt, None)
                    attempt += 1
                    continue
                raise ApiError(unreachable(self.base_url, e)) from e
            except httpx.HTTPError as e:
                raise ApiError(unreachable(self.base_url, e)) from e
            if r.status_code in RETRY_STATUS and attempt < self.retries:
                self._wait(attempt, retry_after(r))
                attempt += 1
                continue
            if r.status_code >= 400:
                raise ApiError(problem_of(r))
            return r

    # -- checks -------------------------------------------------------------------------------------------------
    def check(
        self,
        request: Any = None,
        allow_other_date: bool = False,
        labels: Optional[dict[str, str]] = None,
        **fields: Any,
    ) -> CheckedDecision:
        """Judge one transfer: `check(TransferRequest(...))`, `check({...})` or `check(origin=..., ...)`. The result
        is the engine's Decision with this check's audit-log id in `decision_id`. `labels` (job, dataset, trace id,
        ...) are stored with the audit record and never change the verdict. An `as_of` other than today is refused
        unless `allow_other_date` (a what-if, recorded as such in the audit log)."""
        params = {"allow_other_date": "true"} if allow_other_date else None
        body = _request_dict(request, fields)
        if labels:
            body["labels"] = dict(labels)
        r = self._call("POST", "/v1/check", json=body, params=params)
        d = CheckedDecision.model_validate_json(r.content)
        if d.decision_id is None and r.headers.get("Dfft-Decision-Id"):  # a service that sends it in the header only
            d = d.model_copy(update={"decision_id": r.headers["Dfft-Decision-Id"]})
        return d

    def check_batch(
        self,
        requests: Iterable[Any],
        allow_other_date: bool = False,
        labels: Optional[dict[str, str]] = None,
    ) -> BatchResponse:
        """Judge many transfers (at most the service's batch limit, 10,000 by default); results in order. `labels`
        go with every request of the batch (a request given as a dict may carry its own `labels`, which win)."""
        body = {"requests": [_labelled(q, labels) for q in requests]}
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

    def vocabulary(self) -> Vocabulary:
        """The values a request may use (categories, safeguards, purposes, sectors, exporter kinds), described."""
        return Vocabulary.model_validate_json(self._call("GET", "/v1/vocabulary").content)

    def reload(self) -> ReloadResult:
        """Reload the rule bundle (admin key). A refused bundle raises ApiError (422); the old one keeps serving."""
        return ReloadResult.model_validate_json(self._call("POST", "/v1/rulesets/reload").content)

    # -- audit log ----------------------------------------------------------------------------------------------
    @staticmethod
    def _filters(filters: dict[str, Any]) -> dict[str, Any]:
        out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in filters.items() if v is not None}
        label = filters.get("label")
        if isinstance(label, dict):  # label={"job": "etl-7"} for label=job:etl-7
            out["label"] = [f"{k}:{v}" for k, v in label.items()]
        return out

    def decisions(self, limit: int = 100, **filters: Any) -> DecisionPage:
        """One page of the audit log (admin key). Filters: verdict, origin, destination, caller, request_hash,
        ruleset_hash, batch_id, since, until, after, label (`"key:value"` or a list of them: all must match)."""
        params = {**self._filters(filters), "limit": limit}
        return DecisionPage.model_validate_json(self._call("GET", "/v1/decisions", params=params).content)

    def export_decisions(self, **filters: Any) -> Iterator[DecisionRecord]:
        """Every matching audit record, streamed as JSON Lines (admin key)."""
        try:
            with self._http.stream("GET", "/v1/decisions/export", params=self._filters(filters)) as r:
                if r.status_code >= 400:
                    r.read()
                    raise ApiError(problem_of(r))
                for line in r.iter_lines():
                    if line.strip():
                        yield DecisionRecord.model_validate_json(line)
        except httpx.HTTPError as e:
            raise ApiError(unreachable(self.base_url, e)) from e

    # -- probes -------------------------------------------------------------------------------------------------
    def health(self) -> Health:
        return Health.model_validate_json(self._call("GET", "/healthz").content)

    def ready(self) -> bool:
        try:
            self._call("GET", "/readyz")
            return True
        except ApiError:
            return False
