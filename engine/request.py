"""Transfer requests: the public model, validation against the rule set's vocabulary, and normalisation."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Optional

import pycountry
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..rules.model import RuleSet

# Volume assumed when a request does not say how many people it covers: above every threshold (fail closed).
UNKNOWN_SUBJECTS = 2**31 - 1


class TransferRequest(BaseModel):
    """One planned transfer: data leaves `origin`, passes through `via` in order, and arrives at `destination`."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [{
        "origin": "JP", "destination": "VN", "data_categories": ["personal"], "subjects": 1000,
        "safeguards": ["consent"], "as_of": "2026-06-01"}]})

    origin: str = Field(description="ISO 3166-1 alpha-2 code (or EU) of the exporting jurisdiction")
    destination: str = Field(description="ISO 3166-1 alpha-2 code (or EU) of the final recipient")
    via: tuple[str, ...] = Field(default=(), description="intermediate hops, in order")
    data_categories: tuple[str, ...] = Field(min_length=1, description="categories from the vocabulary")
    subjects: Optional[int] = Field(default=None, ge=0, description="distinct individuals or devices in the law's "
                                    "counting period; omitted = unknown, judged as above every threshold")
    safeguards: tuple[str, ...] = Field(default=(), description="safeguards already in place")
    exporter: str = Field(default="private", description="private | public_body | ciio")
    sector: str = "general"
    purpose: str = "general"
    as_of: Optional[date] = Field(default=None, description="date the law is applied as of; default today")


class RequestError(ValueError):
    """A request that cannot be judged: unknown code, category, safeguard, ... `errors` lists each problem."""

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


@dataclass(frozen=True)
class Leg:
    hop: int
    src: str
    dst: str


@dataclass(frozen=True)
class Normalised:
    """A validated request: codes upper-cased and de-aliased, sets sorted, dates filled. Hashable (memo key)."""

    request: TransferRequest          # the canonical public form (sorted, de-aliased, as_of filled)
    categories: frozenset[str]        # closed under the taxonomy
    safeguards: frozenset[str]
    subjects: int                     # UNKNOWN_SUBJECTS when not given
    legs: tuple[Leg, ...]
    notes: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.request.model_dump_json()


def _iso_code(code: str) -> bool:
    return pycountry.countries.get(alpha_2=code) is not None


def parse(data: Any) -> TransferRequest:
    if isinstance(data, TransferRequest):
        return data
    try:
        return TransferRequest.model_validate(data)
    except ValidationError as e:
        raise RequestError([{"field": ".".join(str(p) for p in err["loc"]) or "request", "message": err["msg"]}
                            for err in e.errors()]) from None


def normalise(data: Any, rs: RuleSet, today: Optional[date] = None) -> Normalised:
    req = parse(data)
    errors: list[dict[str, Any]] = []
    notes: list[str] = []
    covered = sorted(rs.jurisdictions)
    alias_of = {m: bloc for bloc, members in rs.aliases.items() for m in members}

    def code(field: str, value: str, must_be_covered: bool) -> str:
        v = value.strip().upper()
        if v in alias_of:
            notes.append(f"{field} {v} is judged as {alias_of[v]} ({v} is a member)")
            v = alias_of[v]
        if v in rs.jurisdictions:
            return v
        if must_be_covered:
            errors.append({"field": field, "message": f"no rule set for {value!r}; covered jurisdictions: {', '.join(covered)}",
                           "valid": covered})
        elif not _iso_code(v) and v not in rs.aliases:
            errors.append({"field": field, "message": f"{value!r} is not an ISO 3166-1 alpha-2 code; covered "
                           f"jurisdictions: {', '.join(covered)} (any other ISO code is accepted as a destination)",
                           "valid": covered})
        return v

    origin = code("origin", req.origin, True)
    via = tuple(code(f"via[{i}]", v, True) for i, v in enumerate(req.via))
    dest = code("destination", req.destination, False)
    path = (origin, *via, dest)
    for i, (a, b) in enumerate(zip(path, path[1:], strict=False)):
        if a == b:
            errors.append({"field": "via" if via else "destination",
                           "message": f"leg {i} goes from {a} to {b}: a transfer must cross a border on every leg"})

    vocab = rs.vocabulary

    def members(field: str, values: tuple[str, ...], valid: list[str]) -> frozenset[str]:
        out = set()
        for v in values:
            if v not in valid:
                hint = " (or a fideslang / W3C DPV label mapped in rules/vocabulary.yaml)" if field == "data_categories" else ""
                errors.append({"field": field, "message": f"unknown value {v!r}; expected one of {', '.join(valid)}{hint}",
                               "valid": list(valid)})
            out.add(v)
        return frozenset(out)

    resolved = []
    for label in req.data_categories:
        cat = vocab.resolve(label)
        if cat is not None and cat != label:
            notes.append(f"data category {label!r} read as {cat!r}")
        resolved.append(cat or label)
    cats = members("data_categories", tuple(resolved), vocab.values_for("data_categories"))
    sgs = members("safeguards", req.safeguards, vocab.values_for("safeguards"))
    for field in ("exporter", "sector", "purpose"):
        valid = vocab.values_for(field)
        if getattr(req, field) not in valid:
            errors.append({"field": field, "message": f"unknown value {getattr(req, field)!r}; expected one of "
                           f"{', '.join(valid)}", "valid": list(valid)})
    if errors:
        raise RequestError(errors)

    if req.subjects is None:
        notes.append("subjects not given: judged as above every volume threshold")
    canonical = TransferRequest(
        origin=origin, destination=dest, via=via, data_categories=tuple(sorted(cats)), subjects=req.subjects,
        safeguards=tuple(sorted(sgs)), exporter=req.exporter, sector=req.sector, purpose=req.purpose,
        as_of=req.as_of or today or date.today(),
    )
    return Normalised(
        request=canonical,
        categories=vocab.closure(cats),
        safeguards=sgs,
        subjects=UNKNOWN_SUBJECTS if req.subjects is None else req.subjects,
        legs=tuple(Leg(i, a, b) for i, (a, b) in enumerate(zip(path, path[1:], strict=False))),
        notes=tuple(notes),
    )
