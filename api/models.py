"""The API's wire models, shared by the service and the Python client (`dfft.client`). Decisions and requests are
the engine's own models (`TransferRequest`, `Decision`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..engine.decision import Decision, RuleSetRef, Verdict
from ..engine.request import TransferRequest
from .settings import MAX_BATCH

PROBLEM = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: Optional[str] = None,
    type_: str = "about:blank",
    headers: Optional[dict[str, str]] = None,
    **extra: Any,
) -> JSONResponse:
    """An RFC 9457 problem-details response; extra members with value None are left out."""
    body = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


EXAMPLE: dict[str, Any] = {
    "origin": "JP",
    "destination": "VN",
    "data_categories": ["personal"],
    "subjects": 1000,
    "safeguards": ["consent"],
    "as_of": "2026-06-01",
}


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:dfft:problem:invalid-request",
                    "title": "Invalid transfer request",
                    "status": 422,
                    "detail": "origin: no rule set for 'XX'; covered jurisdictions: JP, SG, VN",
                    "errors": [
                        {
                            "field": "origin",
                            "message": "no rule set for 'XX'; covered jurisdictions: JP, SG, VN",
                            "valid": ["JP", "SG", "VN"],
                        }
                    ],
                }
            ]
        },
    )

    type: str = "about:blank"
    title: str
    status: int
    detail: Optional[str] = None
    errors: Optional[list[dict[str, Any]]] = None


class BatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "requests": [
                        EXAMPLE,
                        {"origin": "SG", "destination": "JP", "data_categories": ["personal", "health"]},
                    ]
                }
            ]
        },
    )

    requests: list[TransferRequest] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"at most {MAX_BATCH:,} transfer requests; judged in order"
    )


class BatchItem(BaseModel):
    """One result of a batch, in the order of the requests: a decision (recorded under `decision_id`) or, for a
    request that cannot be judged (unknown code, category, ...), a problem."""

    index: int
    decision_id: Optional[str] = None
    decision: Optional[Decision] = None
    error: Optional[Problem] = None


class BatchResponse(BaseModel):
    batch_id: str
    ruleset: RuleSetRef
    count: int
    summary: dict[str, int] = Field(description="number of results per verdict, and `invalid`")
    results: list[BatchItem]


class RulesetInfo(BaseModel):
    version: str
    hash: str
    title: Optional[str] = None
    loaded_at: datetime
    jurisdictions: list[str]
    rules: int


class ReloadResult(BaseModel):
    status: Literal["reloaded", "unchanged"]
    previous: RuleSetRef
    current: RulesetInfo


class JurisdictionSummary(BaseModel):
    code: str
    name: str
    laws: list[str]
    rules: dict[str, int] = Field(description="rule count per domain")
    low_confidence: int


class DecisionRecord(BaseModel):
    """One audit-log entry: what was asked, by whom, when, the verdict and the rule set that gave it."""

    seq: int
    id: str
    created_at: datetime
    caller: str
    request_hash: str = Field(description="SHA-256 of the normalised request (canonical JSON)")
    request: TransferRequest
    verdict: Verdict
    rule_ids: list[str]
    ruleset_version: str
    ruleset_hash: str
    batch_id: Optional[str] = None
    other_date: bool = Field(
        False,
        description="the caller opted in (`allow_other_date`) to judge as of another "
        "date than the day of the check: a what-if, not a pre-transfer gate decision",
    )


class DecisionPage(BaseModel):
    items: list[DecisionRecord]
    next_after: Optional[int] = Field(None, description="pass as `after` to get the next page; null at the end")


class Health(BaseModel):
    status: str
    ruleset: Optional[RuleSetRef] = None
