"""The API's wire models, shared by the service and the Python client (`dfft.client`). Decisions and requests are
the engine's own models (`TransferRequest`, `Decision`)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from ..engine.decision import Decision, RuleSetRef, Verdict
from ..engine.request import TransferRequest
from .settings import MAX_BATCH

if TYPE_CHECKING:
    from fastapi.responses import JSONResponse

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
    from fastapi.responses import JSONResponse  # the server extra (this module is also the client's, without it)

    body = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def internal_error() -> JSONResponse:
    """The 500 answer to an unhandled error: a problem without a verdict (never allowed)."""
    return problem(
        500,
        "Internal error: no verdict",
        "an internal error occurred; treat the transfer as not allowed",
        "urn:dfft:problem:internal-error",
    )


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

    type: str = Field(
        "about:blank", description="a URI naming the kind of problem, e.g. urn:dfft:problem:invalid-request"
    )
    title: str = Field(description="a short, human-readable summary of the kind of problem")
    status: int = Field(description="the HTTP status code")
    detail: Optional[str] = Field(None, description="what went wrong with this request, for a human")
    errors: Optional[list[dict[str, Any]]] = Field(
        None,
        description="for invalid input, one entry per problem: `field` (dotted path), `message`, and where "
        "known `valid` (the accepted values)",
    )
    more_errors: Optional[int] = Field(None, description="how many further errors were left out of `errors`")


# -- caller labels: context stored with the audit record (job, dataset, trace id); they never change a verdict ----
MAX_LABELS = 16
MAX_LABEL_KEY = 64
MAX_LABEL_VALUE = 256
LABEL_KEY = r"^[a-z][a-z0-9_.-]*$"
_LABEL_KEY_RE = re.compile(LABEL_KEY)


def _labels_schema(schema: dict[str, Any]) -> None:
    """Keys constrained by `propertyNames`, values by `additionalProperties` (not `patternProperties`, which client
    generators ignore: openapi-python-client dropped every label)."""
    schema.pop("patternProperties", None)
    schema["propertyNames"] = {"maxLength": MAX_LABEL_KEY, "pattern": LABEL_KEY}
    schema["additionalProperties"] = {"type": "string", "maxLength": MAX_LABEL_VALUE}


LabelKey = Annotated[str, StringConstraints(strict=True, max_length=MAX_LABEL_KEY, pattern=LABEL_KEY)]
LabelValue = Annotated[str, StringConstraints(strict=True, max_length=MAX_LABEL_VALUE)]
Labels = Annotated[
    dict[LabelKey, LabelValue],
    Field(
        max_length=MAX_LABELS,
        description=f"caller context stored with the audit record and returned by /v1/decisions (filter with "
        f'`?label=key:value`), e.g. {{"job": "etl-7", "dataset": "customers", "trace_id": "..."}}: at '
        f"most {MAX_LABELS} labels, keys of at most {MAX_LABEL_KEY} characters matching `{LABEL_KEY}`, string values "
        f"of at most {MAX_LABEL_VALUE} characters. Labels never change the verdict.",
        examples=[{"job": "etl-7", "dataset": "customers"}],
        json_schema_extra=_labels_schema,
    ),
]
LABELS = TypeAdapter(Optional[Labels])


def label_filter(value: str) -> tuple[str, str]:
    """`key:value` (a `?label=` filter) as (key, value); ValueError naming what is expected."""
    key, sep, val = value.partition(":")
    if not sep or not _LABEL_KEY_RE.match(key) or len(key) > MAX_LABEL_KEY or len(val) > MAX_LABEL_VALUE:
        raise ValueError(
            f"expected key:value with a key matching {LABEL_KEY} (at most {MAX_LABEL_KEY} characters) and a value of "
            f"at most {MAX_LABEL_VALUE} characters; got {value[:100]!r}"
        )
    return key, val


class CheckRequest(TransferRequest):
    """A transfer request with optional `labels`: the body of POST /v1/check and each item of a batch. The labels are
    stored with the audit record and split off before the request is judged: they never change the verdict."""

    # (The service parses the body itself -- api/app.py, parse_check -- and hands the engine a TransferRequest
    # without the labels, so the engine's memo keys ignore them; this model documents the wire format.)

    labels: Optional[Labels] = None


class CheckedDecision(Decision):
    """The decision of POST /v1/check with its audit-log id (`decision_id`, also in the `Dfft-Decision-Id`
    header). Equal requests give equal decisions; every check gets its own id."""

    decision_id: Optional[str] = Field(
        None, description="the audit-log id of this decision (32 hex digits); per check, not per request"
    )


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

    requests: list[CheckRequest] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"at most {MAX_BATCH:,} transfer requests, each with optional `labels`; judged in order",
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


class BundleRefusal(BaseModel):
    id: int = Field(description="the published bundle refused")
    version: str
    ruleset_hash: str
    at: datetime
    reason: str
    errors: list[dict[str, Optional[str]]] = []


class BundleDistribution(BaseModel):
    """Where the serving bundle comes from (api/distribution.py): a published bundle (`dfft rules publish`) or the
    instance's own directory, and whether it is the bundle the database names active."""

    source: Literal["database", "directory"]
    bundle_id: Optional[int] = Field(None, description="the published bundle serving now (null: the local one)")
    active_bundle_id: Optional[int] = Field(None, description="the active bundle at the last poll (null: none)")
    converged: bool = Field(description="the serving bundle is the active one (or none is active)")
    poll_seconds: float = Field(description="seconds between polls (0: not following the database)")
    poll_error: Optional[str] = Field(None, description="why the last poll failed, if it did")
    refused: Optional[BundleRefusal] = Field(None, description="the active bundle, refused by this instance")


class RulesetInfo(BaseModel):
    version: str
    hash: str
    title: Optional[str] = None
    loaded_at: datetime
    jurisdictions: list[str]
    rules: int
    distribution: Optional[BundleDistribution] = None


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
    labels: dict[str, str] = Field(default_factory=dict, description="the caller's labels sent with the request")
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


class VocabularyTerm(BaseModel):
    name: str = Field(description="the value to send in a request")
    description: Optional[str] = Field(None, description="what it means (null where the vocabulary gives none)")


class CategoryTerm(VocabularyTerm):
    parents: list[str] = Field(
        default_factory=list, description="broader categories: a rule about a parent applies to this one too"
    )
    labels: list[str] = Field(
        default_factory=list, description="fideslang keys and W3C DPV terms accepted in place of the name"
    )


class Vocabulary(BaseModel):
    """The closed sets a transfer request draws from, with what each value means (rules/vocabulary.yaml of the rule
    bundle serving now)."""

    data_categories: list[CategoryTerm] = Field(description="`data_categories` of a request")
    safeguards: list[VocabularyTerm] = Field(description="`safeguards` of a request, and what meets an obligation")
    purposes: list[VocabularyTerm] = Field(description="`purpose` of a request")
    sectors: list[VocabularyTerm] = Field(description="`sector` of a request")
    exporters: list[VocabularyTerm] = Field(description="`exporter` of a request: the kind of exporting organisation")


def vocabulary_of(v: Any) -> Vocabulary:
    """The wire form of a rule set's `Vocabulary` (dfft.rules.model)."""
    return Vocabulary(
        data_categories=[
            CategoryTerm(name=n, description=c.title, parents=list(c.parents), labels=[*c.fideslang, *c.dpv])
            for n, c in v.data_categories.items()
        ],
        safeguards=[VocabularyTerm(name=n, description=d) for n, d in v.safeguards.items()],
        purposes=[VocabularyTerm(name=n, description=d) for n, d in v.purposes.items()],
        sectors=[VocabularyTerm(name=n) for n in v.sectors],
        exporters=[VocabularyTerm(name=n, description=d) for n, d in v.exporters.items()],
    )
