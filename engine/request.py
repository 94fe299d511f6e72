"""Transfer requests: the public model, validation against the rule set's vocabulary, and normalisation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Optional

import pycountry
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StringConstraints, ValidationError

from ..rules.model import RuleSet

# Volume assumed when a request does not say how many people it covers: above every threshold (fail closed).
UNKNOWN_SUBJECTS = 2**31 - 1

# Size limits of one request (every size bounded, so no request can make a large decision or a large error).
# A real transfer chain rarely has more than three or four hops; the vocabulary has ~20 data categories and ~15
# safeguards (64 leaves room for fideslang / DPV labels); every value is a code or a vocabulary word of a few dozen
# characters at most.
MAX_VIA = 8  # onward hops in `via`
MAX_ITEMS = 64  # entries in `data_categories` and in `safeguards`
MAX_STR = 64  # characters in any string value
MAX_SUBJECTS = 10**12  # more than every person and device on earth
MAX_LISTED = 10  # unknown values quoted in one error (the rest are counted)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(v: Any) -> Any:
    """Dates are ISO `YYYY-MM-DD` strings (or date objects from Python callers); never numbers (Unix time),
    datetimes or other spellings."""
    if v is None:
        return v
    if isinstance(v, datetime) or (not isinstance(v, date) and not (isinstance(v, str) and _ISO_DATE.fullmatch(v))):
        raise ValueError("expected an ISO date string YYYY-MM-DD")
    return v


Text = Annotated[str, StringConstraints(strict=True, max_length=MAX_STR)]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class TransferRequest(BaseModel):
    """One planned transfer: data leaves `origin`, passes through `via` in order, and arrives at `destination`."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "origin": "JP",
                    "destination": "VN",
                    "data_categories": ["personal"],
                    "subjects": 1000,
                    "safeguards": ["consent"],
                    "as_of": "2026-06-01",
                }
            ]
        },
    )

    origin: Text = Field(
        description="ISO 3166-1 alpha-2 code (or EU) of the exporting jurisdiction "
        f"(a string of at most {MAX_STR} characters)"
    )
    destination: Text = Field(description="ISO 3166-1 alpha-2 code (or EU) of the final recipient")
    via: tuple[Text, ...] = Field(
        default=(), max_length=MAX_VIA, description=f"intermediate hops, in order (at most {MAX_VIA})"
    )
    data_categories: tuple[Text, ...] = Field(
        min_length=1, max_length=MAX_ITEMS, description=f"categories from the vocabulary (1 to {MAX_ITEMS})"
    )
    subjects: Optional[StrictInt] = Field(
        default=None,
        ge=0,
        le=MAX_SUBJECTS,
        description="distinct individuals or "
        "devices in the law's counting period, a JSON integer (not a string, float "
        "or boolean); omitted = unknown, judged as above every threshold",
    )
    safeguards: tuple[Text, ...] = Field(
        default=(), max_length=MAX_ITEMS, description=f"safeguards already in place (at most {MAX_ITEMS})"
    )
    exporter: Text = Field(default="private", description="private | public_body | ciio")
    sector: Text = "general"
    purpose: Text = "general"
    as_of: Optional[IsoDate] = Field(
        default=None,
        description="date the law is applied as of, an ISO date string YYYY-MM-DD (numbers are refused); default today",
    )


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

    request: TransferRequest  # the canonical public form (sorted, de-aliased, as_of filled)
    categories: frozenset[str]  # closed under the taxonomy
    safeguards: frozenset[str]
    subjects: int  # UNKNOWN_SUBJECTS when not given
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
        raise RequestError(collapse([dict(x) for x in e.errors()])) from None


def collapse(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's errors, one per field and message: the same problem in 3,000 items of a list is one error that
    names the first items and counts the rest."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for err in errors:
        loc = [str(p) for p in err["loc"]]
        top = loc[0] if loc else "request"
        k = (top, err["msg"])
        if k not in out:
            out[k] = {"field": ".".join(loc) or "request", "message": err["msg"], "_items": []}
        if len(loc) > 1:
            out[k]["_items"].append(".".join(loc))
    for e in out.values():
        items = e.pop("_items")
        if len(items) > 1:
            e["field"] = items[0].split(".")[0]
            e["message"] += (
                f" (items {', '.join(i.partition('.')[2] for i in items[:MAX_LISTED])}"
                + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")
                + ")"
            )
    return list(out.values())


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
            errors.append(
                {
                    "field": field,
                    "message": f"no rule set for {value!r}; covered jurisdictions: {', '.join(covered)}",
                    "valid": covered,
                }
            )
        elif not _iso_code(v) and v not in rs.aliases:
            errors.append(
                {
                    "field": field,
                    "message": f"{value!r} is not an ISO 3166-1 alpha-2 code; covered "
                    f"jurisdictions: {', '.join(covered)} (any other ISO code is accepted as a destination)",
                    "valid": covered,
                }
            )
        return v

    origin = code("origin", req.origin, True)
    via = tuple(code(f"via[{i}]", v, True) for i, v in enumerate(req.via))
    dest = code("destination", req.destination, False)
    path = (origin, *via, dest)
    for i, (a, b) in enumerate(zip(path, path[1:], strict=False)):
        if a == b:
            errors.append(
                {
                    "field": "via" if via else "destination",
                    "message": f"leg {i} goes from {a} to {b}: a transfer must cross a border on every leg",
                }
            )

    vocab = rs.vocabulary

    def members(field: str, values: tuple[str, ...], valid: list[str]) -> frozenset[str]:
        out = set(values)
        # one error per field, whatever the number of unknown values: the valid values are listed once
        unknown = list(dict.fromkeys(v for v in values if v not in valid))
        if unknown:
            hint = (
                " (or a fideslang / W3C DPV label mapped in rules/vocabulary.yaml)"
                if field == "data_categories"
                else ""
            )
            shown = ", ".join(repr(v) for v in unknown[:MAX_LISTED])
            more = f" and {len(unknown) - MAX_LISTED} more" if len(unknown) > MAX_LISTED else ""
            what = "unknown value" if len(unknown) == 1 else "unknown values"
            errors.append(
                {
                    "field": field,
                    "message": f"{what} {shown}{more}; expected one of {', '.join(valid)}{hint}",
                    "unknown": unknown[:MAX_LISTED],
                    "valid": list(valid),
                }
            )
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
            errors.append(
                {
                    "field": field,
                    "message": f"unknown value {getattr(req, field)!r}; expected one of {', '.join(valid)}",
                    "valid": list(valid),
                }
            )
    if errors:
        raise RequestError(errors)

    if req.subjects is None:
        notes.append("subjects not given: judged as above every volume threshold")
    canonical = TransferRequest(
        origin=origin,
        destination=dest,
        via=via,
        data_categories=tuple(sorted(cats)),
        subjects=req.subjects,
        safeguards=tuple(sorted(sgs)),
        exporter=req.exporter,
        sector=req.sector,
        purpose=req.purpose,
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
