"""Transfer requests: the public model, validation against the rule set's vocabulary, and normalisation."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, NamedTuple, Optional, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
)

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

# -- request model v2: parties, roles, access, data facts (docs/rule-language.md "Request model") -----------------
# Closed sets: part of the request model, not of a jurisdiction's law, so they are enums of the API's schema. The
# values live in rules/schema.py (the rule loader checks rule conditions against them); tests check they agree.
ExporterRole = Literal["controller", "processor", "data_subject"]
RecipientRole = Literal["controller", "processor"]
Relation = Literal["third_party", "group_company", "same_entity", "employee", "controller_of_exporter"]
Access = Literal["full", "none"]
RecipientKind = Literal["private", "public_authority", "court", "international_organisation"]
Size = Literal["unknown", "micro", "small", "medium", "large"]
Outcome = Literal["done", "favourable", "unfavourable"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Recipient(_Part):
    """Who receives the data on a leg, seen from the leg's exporter."""

    relation: Relation = Field(
        default="third_party",
        description="the recipient's relation to the exporter: third_party (default), group_company (another legal "
        "entity of the same group), same_entity (the exporter's own branch or office abroad), employee (the "
        "exporter's own employee abroad), controller_of_exporter (a processor returning data to its controller)",
    )
    role: RecipientRole = Field(default="controller", description="controller (default) or processor")
    access: Access = Field(
        default="full",
        description="full (default), or none: the recipient stores or processes the data but cannot read it "
        "(e.g. encrypted with keys held by the exporter, contractually and technically barred from access)",
    )
    kind: RecipientKind = Field(
        default="private",
        description="private (default), public_authority (a foreign public authority), court, "
        "international_organisation",
    )


DEFAULT_RECIPIENT = Recipient()


class Hop(_Part):
    """An intermediate hop: a recipient with its own onward leg (default), or `transit` (the data only passes
    through; nobody there has access)."""

    jurisdiction: Text = Field(description="ISO 3166-1 alpha-2 code (or EU) of the hop")
    transit: StrictBool = Field(
        default=False, description="true: the data only passes through (no recipient, no access); not a leg"
    )
    recipient: Recipient = Field(default=DEFAULT_RECIPIENT, description="the recipient there (ignored for transit)")


class SafeguardOutcome(_Part):
    """A safeguard whose result matters: an assessment done vs one that concluded protection is adequate; a
    filing made vs an approval granted."""

    id: Text = Field(description="a safeguard from the vocabulary")
    outcome: Outcome = Field(
        description="done (made or filed, no conclusion yet), favourable (concluded adequate / approved), "
        "unfavourable (concluded not adequate / refused: the safeguard then meets nothing)"
    )


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
    via: tuple[Union[Text, Hop], ...] = Field(
        default=(),
        max_length=MAX_VIA,
        description=f"intermediate hops, in order (at most {MAX_VIA}): a code (a recipient with its own onward leg) "
        "or a Hop object (transit, or a recipient described in full)",
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
    safeguards: tuple[Union[Text, SafeguardOutcome], ...] = Field(
        default=(),
        max_length=MAX_ITEMS,
        description=f"safeguards already in place (at most {MAX_ITEMS}): a name, or {{id, outcome}} where the law "
        "distinguishes doing from concluding",
    )
    exporter: Text = Field(default="private", description="kind of exporter: private | public_body | ciio | ...")
    sector: Text = "general"
    purpose: Text = Field(default="general", description="the purpose (v1); see `purposes` for several")
    # -- v2 facts; every default keeps the v1 meaning ------------------------------------------------------------
    purposes: tuple[Text, ...] = Field(
        default=(), max_length=MAX_ITEMS, description="all purposes of the transfer (with `purpose`, a set)"
    )
    exporter_role: ExporterRole = Field(
        default="controller",
        description="controller (default), processor (or data intermediary), or data_subject (the individual "
        "sends their own data)",
    )
    exporter_size: Size = Field(
        default="unknown", description="size where a law exempts small firms; unknown (default) never exempts"
    )
    established: tuple[Text, ...] = Field(
        default=(),
        max_length=MAX_VIA,
        description="jurisdictions where the exporter is established (default: the origin only)",
    )
    recipient: Recipient = Field(default=DEFAULT_RECIPIENT, description="the final recipient")
    subjects_in: tuple[Text, ...] = Field(
        default=(), max_length=MAX_ITEMS, description="where the data subjects are (default: the origin)"
    )
    nationality: tuple[Text, ...] = Field(
        default=(),
        max_length=MAX_ITEMS,
        description="the data subjects' nationalities, where a law turns on it (default: where they are)",
    )
    collected_in: Optional[Text] = Field(default=None, description="where the data was collected (default: origin)")
    publicly_available: StrictBool = Field(
        default=False, description="the data is publicly available (true only where all of it is)"
    )
    counts: dict[Text, Annotated[StrictInt, Field(ge=0, le=MAX_SUBJECTS)]] = Field(
        default_factory=dict,
        max_length=MAX_ITEMS,
        description="people per data category where thresholds differ (e.g. sensitive_personal: 12000); a "
        "category not listed counts `subjects`",
    )
    as_of: Optional[IsoDate] = Field(
        default=None,
        description="date the law is applied as of, an ISO date string YYYY-MM-DD (numbers are refused); default today",
    )

    # the hash, computed on first use and kept (a slot: not a field, not compared, not copied, not pickled; every
    # copy -- model_copy, pickling -- starts without it, so a copy with other values never inherits a stale hash)
    __slots__ = ("_dfft_hash",)

    def __hash__(self) -> int:
        # frozen, so hashable (memo keys) -- `counts` is a mapping: hash its items. A request is hashed several times
        # on its way through the service and the engine's memos, each time walking every field: once is enough.
        try:
            return self._dfft_hash  # type: ignore[attr-defined]
        except AttributeError:
            values = list(self.__dict__.values())
            if len(values) > _COUNTS and type(values[_COUNTS]) is dict:
                values[_COUNTS] = tuple(sorted(values[_COUNTS].items()))
                h = hash(tuple(values))
            else:  # a __dict__ not in field order (not built by validation, copy or the engine)
                h = hash(tuple(tuple(sorted(v.items())) if type(v) is dict else v for v in values))
            object.__setattr__(self, "_dfft_hash", h)
            return h

    @property
    def via_codes(self) -> tuple[str, ...]:
        """The codes of the hops, transit ones included, in order."""
        return tuple(v if isinstance(v, str) else v.jurisdiction for v in self.via)

    @property
    def safeguard_ids(self) -> tuple[str, ...]:
        """The safeguards named, with or without an outcome."""
        return tuple(s if isinstance(s, str) else s.id for s in self.safeguards)


_COUNTS = list(TransferRequest.model_fields).index("counts")  # the one field that is a mapping (hashed as its items)


class RequestError(ValueError):
    """A request that cannot be judged: unknown code, category, safeguard, ... `errors` lists each problem."""

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


class Leg(NamedTuple):
    """One transfer: from the exporter of this leg (the origin, or the previous recipient) to the next recipient.
    Transit hops are not legs: they are listed in `through`. (A named tuple: built on every check.)"""

    hop: int
    src: str
    dst: str
    recipient: Recipient = DEFAULT_RECIPIENT
    through: tuple[str, ...] = ()


class Normalised(NamedTuple):
    """A validated request: codes upper-cased and de-aliased, sets sorted, dates filled. Immutable and hashable (a
    named tuple: built on every check, so no per-field __setattr__ of a frozen dataclass)."""

    request: TransferRequest  # the canonical public form (sorted, de-aliased, as_of filled)
    categories: frozenset[str]  # closed under the taxonomy
    safeguards: frozenset[str]
    subjects: int  # UNKNOWN_SUBJECTS when not given
    legs: tuple[Leg, ...]
    notes: tuple[str, ...]
    # v2 facts (defaults give the v1 meaning)
    given: frozenset[str] = frozenset()  # the categories as given (before closure), for `only`
    purposes: frozenset[str] = frozenset()
    outcomes: frozenset[str] = frozenset()  # "safeguard:outcome"
    established: frozenset[str] = frozenset()
    subjects_in: frozenset[str] = frozenset()
    nationality: frozenset[str] = frozenset()
    collected_in: str = ""
    counts: tuple[tuple[str, int], ...] = ()

    def subjects_of(self, category: str) -> int:
        """People whose data of `category` is in the transfer: the count given for it, else (when the category is
        in the transfer) the total, else 0. Never less than a given count of a sub-category."""
        given = dict(self.counts)
        if category not in self.categories:
            return 0
        if category in given:
            return given[category]
        return self.subjects

    @property
    def key(self) -> str:
        return self.request.model_dump_json(exclude_defaults=True)


_ISO: dict[str, bool] = {}


def _iso_code(code: str) -> bool:
    hit = _ISO.get(code)
    if hit is None:
        if len(_ISO) > 4096:
            _ISO.clear()
        import pycountry  # imported on first use: a check between covered jurisdictions never needs it

        hit = _ISO[code] = pycountry.countries.get(alpha_2=code) is not None
    return hit


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


class _Lookups:
    """What normalisation needs of a rule set, built once per rule set (rule sets are immutable): covered codes
    (sorted), member -> bloc aliases, the valid values of each vocabulary field (sorted lists and sets), and memos of
    category labels resolved and of category sets closed under the taxonomy."""

    __slots__ = ("rs", "covered", "alias_of", "valid_sets", "values", "resolved", "closures", "one", "singles")

    def __init__(self, rs: RuleSet):
        self.rs = rs  # held, so the id of the rule set is not reused while the entry lives
        self.covered = sorted(rs.jurisdictions)
        self.alias_of = {m: bloc for bloc, members in rs.aliases.items() for m in members}
        vocab = rs.vocabulary
        self.values = {f: vocab.values_for(f) for f in _VOCAB_FIELDS}
        self.values["purposes"] = self.values["purpose"]
        self.valid_sets = {f: frozenset(v) for f, v in self.values.items()}
        self.resolved: dict[str, Optional[str]] = {}
        self.closures: dict[frozenset[str], frozenset[str]] = {}
        self.one: dict[str, frozenset[str]] = {}  # one category -> its closure (bounded by the vocabulary)
        self.singles: dict[str, frozenset[str]] = {}  # value -> frozenset({value}) (codes and vocabulary words)

    def only(self, value: str) -> frozenset[str]:
        hit = self.singles.get(value)
        if hit is None:
            if len(self.singles) > 4096:
                self.singles.clear()
            hit = self.singles[value] = frozenset((value,))
        return hit

    def resolve(self, label: str) -> Optional[str]:
        try:
            return self.resolved[label]
        except KeyError:
            if len(self.resolved) > 4096:
                self.resolved.clear()
            hit = self.resolved[label] = self.rs.vocabulary.resolve(label)
            return hit

    def closure(self, cats: frozenset[str]) -> frozenset[str]:
        """The categories with their ancestors: the union of each category's closure (each computed once)."""
        hit = self.closures.get(cats)
        if hit is None:
            if len(self.closures) > 4096:
                self.closures.clear()
            one = self.one
            parts = []
            for c in cats:
                x = one.get(c)
                if x is None:
                    x = one[c] = self.rs.vocabulary.closure({c})
                parts.append(x)
            hit = self.closures[cats] = frozenset().union(*parts)
        return hit


_LOOKUPS: dict[int, _Lookups] = {}
_VOCAB_FIELDS = ("data_categories", "safeguards", "purpose", "sector", "exporter")


def _lookups_of(rs: RuleSet) -> _Lookups:
    hit = _LOOKUPS.get(id(rs))
    if hit is None or hit.rs is not rs:
        if len(_LOOKUPS) > 64:
            _LOOKUPS.clear()
        hit = _LOOKUPS[id(rs)] = _Lookups(rs)
    return hit


def _lookups(rs: RuleSet) -> tuple[list[str], dict[str, str], dict[str, frozenset[str]]]:
    """Covered codes (sorted), member -> bloc aliases and the valid values of each vocabulary field as sets, built
    once per rule set."""
    hit = _lookups_of(rs)
    return hit.covered, hit.alias_of, hit.valid_sets


_FIELDS_SET = frozenset(TransferRequest.model_fields)


def _canonical(values: dict[str, Any]) -> TransferRequest:
    """A TransferRequest from values that were all validated (the hot path: no second validation). The same object
    `model_copy(update=<every field>)` of the parsed request gives: every field set, no extra, no private state."""
    return bare_model(TransferRequest, values, set(_FIELDS_SET))


def bare_model(model: Any, d: dict[str, Any], fields_set: set[str]) -> Any:
    """An instance of the pydantic `model` with `d` as its `__dict__` (every field, in field order, already of its
    type) and `fields_set` as the fields set; no extra, no private state, nothing validated."""
    m = model.__new__(model)
    object.__setattr__(m, "__dict__", d)
    object.__setattr__(m, "__pydantic_fields_set__", fields_set)
    object.__setattr__(m, "__pydantic_extra__", None)
    object.__setattr__(m, "__pydantic_private__", None)
    return m


# -- the fast path: a plain v1-shaped request (codes, categories, safeguards, subjects, exporter, sector, purpose,
# as_of; hops as plain codes; no outcomes, counts or v2 facts) that is valid as it stands is normalised here without
# pydantic and without the general path's bookkeeping. It gives exactly what the general path gives (the same
# canonical request, notes, legs and sets); anything else -- another shape, a value of another type, anything the
# general path would refuse -- returns None, and the general path then judges it (and words the errors).
_PLAIN_KEYS = frozenset(
    (
        "origin",
        "destination",
        "via",
        "data_categories",
        "subjects",
        "safeguards",
        "exporter",
        "sector",
        "purpose",
        "as_of",
    )
)


def _texts(v: Any, low: int, high: int) -> Optional[tuple[str, ...]]:
    """A list or tuple of `low`..`high` plain strings of at most MAX_STR characters, as a tuple; else None."""
    t = type(v)
    if (t is not list and t is not tuple) or not low <= len(v) <= high:
        return None
    for x in v:
        if type(x) is not str or len(x) > MAX_STR:
            return None
    return v if t is tuple else tuple(v)


def _plain_dict(data: dict[str, Any], rs: RuleSet, today: Optional[date]) -> Optional[Normalised]:
    if not data.keys() <= _PLAIN_KEYS:
        return None
    get = data.get
    origin: Any = get("origin")
    destination: Any = get("destination")
    exporter, sector, purpose = get("exporter", "private"), get("sector", "general"), get("purpose", "general")
    for x in (origin, destination, exporter, sector, purpose):
        if type(x) is not str or len(x) > MAX_STR:
            return None
    via = _texts(get("via", ()), 0, MAX_VIA)
    cats = _texts(get("data_categories"), 1, MAX_ITEMS)
    sgs = _texts(get("safeguards", ()), 0, MAX_ITEMS)
    if via is None or cats is None or sgs is None:
        return None
    subjects = get("subjects")
    if subjects is not None and (type(subjects) is not int or not 0 <= subjects <= MAX_SUBJECTS):
        return None
    as_of = get("as_of")
    if as_of is not None and type(as_of) is not date:
        if type(as_of) is not str or len(as_of) != 10 or not as_of.isascii() or not _ISO_DATE.fullmatch(as_of):
            return None
        try:
            as_of = date.fromisoformat(as_of)
        except ValueError:
            return None
    return _plain(rs, today, origin, destination, via, cats, subjects, sgs, exporter, sector, purpose, as_of, None)


def _plain_model(req: TransferRequest, rs: RuleSet, today: Optional[date]) -> Optional[Normalised]:
    d = req.__dict__
    if (
        d["purposes"]
        or d["established"]
        or d["subjects_in"]
        or d["nationality"]
        or d["counts"]
        or d["collected_in"] is not None
        or d["publicly_available"]
        or d["exporter_role"] != "controller"
        or d["exporter_size"] != "unknown"
        or d["recipient"] != DEFAULT_RECIPIENT
    ):
        return None
    via, sgs = d["via"], d["safeguards"]
    for x in via:
        if type(x) is not str:
            return None
    for x in sgs:
        if type(x) is not str:
            return None
    return _plain(
        rs,
        today,
        d["origin"],
        d["destination"],
        via,
        d["data_categories"],
        d["subjects"],
        sgs,
        d["exporter"],
        d["sector"],
        d["purpose"],
        d["as_of"],
        d["recipient"],
    )


def _plain(
    rs: RuleSet,
    today: Optional[date],
    origin: str,
    destination: str,
    via: tuple[str, ...],
    labels: tuple[str, ...],
    subjects: Optional[int],
    safeguards: tuple[str, ...],
    exporter: str,
    sector: str,
    purpose: str,
    as_of: Optional[date],
    recipient: Optional[Recipient],
) -> Optional[Normalised]:
    lk = _lookups_of(rs)
    juris, alias_of, valid = rs.jurisdictions, lk.alias_of, lk.valid_sets
    if exporter not in valid["exporter"] or sector not in valid["sector"] or purpose not in valid["purpose"]:
        return None
    notes: list[str] = []
    o = origin.strip().upper()
    if o in alias_of:
        notes.append(f"origin {o} is judged as {alias_of[o]} ({o} is a member)")
        o = alias_of[o]
    if o not in juris:
        return None
    hops: list[str] = []
    prev = o
    for i, v in enumerate(via):
        c = v.strip().upper()
        if c in alias_of:
            notes.append(f"via[{i}] {c} is judged as {alias_of[c]} ({c} is a member)")
            c = alias_of[c]
        if c not in juris or c == prev:
            return None
        hops.append(c)
        prev = c
    dst = destination.strip().upper()
    if dst in alias_of:
        notes.append(f"destination {dst} is judged as {alias_of[dst]} ({dst} is a member)")
        dst = alias_of[dst]
    if dst == prev or (dst not in juris and not _iso_code(dst) and dst not in rs.aliases):
        return None
    resolved = []
    for label in labels:
        cat = lk.resolve(label)
        if cat is not None and cat != label:
            notes.append(f"data category {label!r} read as {cat!r}")
        resolved.append(cat or label)
    cats = frozenset(resolved)
    sgs = frozenset(safeguards)
    if not cats <= valid["data_categories"] or not sgs <= valid["safeguards"]:
        return None
    if subjects is None:
        notes.append("subjects not given: judged as above every volume threshold")
    if recipient is None:
        recipient = DEFAULT_RECIPIENT
    legs: list[Leg] = []
    src = o
    for c in hops:
        legs.append(Leg(len(legs), src, c, DEFAULT_RECIPIENT, ()))
        src = c
    legs.append(Leg(len(legs), src, dst, recipient, ()))
    canonical = _canonical(
        {
            "origin": o,
            "destination": dst,
            "via": tuple(hops),
            "data_categories": tuple(sorted(cats)),
            "subjects": subjects,
            "safeguards": tuple(sorted(sgs)),
            "exporter": exporter,
            "sector": sector,
            "purpose": purpose,
            "purposes": (),
            "exporter_role": "controller",
            "exporter_size": "unknown",
            "established": (),
            "recipient": recipient,
            "subjects_in": (),
            "nationality": (),
            "collected_in": None,
            "publicly_available": False,
            "counts": {},
            "as_of": as_of or today or date.today(),
        }
    )
    where = lk.only(o)
    return Normalised(
        canonical,
        lk.closure(cats),
        sgs,
        UNKNOWN_SUBJECTS if subjects is None else subjects,
        tuple(legs),
        tuple(notes),
        cats,
        lk.only(purpose),
        _NO_STRS,
        where,
        where,
        where,
        o,
        (),
    )


_NO_STRS: frozenset[str] = frozenset()


def normalise(data: Any, rs: RuleSet, today: Optional[date] = None) -> Normalised:
    t = type(data)
    if t is dict:
        fast = _plain_dict(data, rs, today)
        if fast is not None:
            return fast
    elif t is TransferRequest:
        fast = _plain_model(data, rs, today)
        if fast is not None:
            return fast
    return _normalise(data, rs, today)


def _normalise(data: Any, rs: RuleSet, today: Optional[date] = None) -> Normalised:
    """The general path: every shape, every check, the errors worded."""
    req = parse(data)
    errors: list[dict[str, Any]] = []
    notes: list[str] = []
    lk = _lookups_of(rs)
    covered, alias_of, valid_sets, values = lk.covered, lk.alias_of, lk.valid_sets, lk.values
    juris = rs.jurisdictions

    def code(field: str, value: str, must_be_covered: bool) -> str:
        v = value.strip().upper()
        if v in alias_of:
            notes.append(f"{field} {v} is judged as {alias_of[v]} ({v} is a member)")
            v = alias_of[v]
        if v in juris:
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
    hops: list[tuple[str, bool, Recipient]] = []
    for i, v in enumerate(req.via):
        if isinstance(v, Hop):
            # a transit country need not be covered: nobody there receives the data
            hops.append((code(f"via[{i}].jurisdiction", v.jurisdiction, not v.transit), v.transit, v.recipient))
        else:
            hops.append((code(f"via[{i}]", v, True), False, DEFAULT_RECIPIENT))
    dest = code("destination", req.destination, False)
    path = (origin, *(h[0] for h in hops), dest)
    for i, (a, b) in enumerate(zip(path, path[1:], strict=False)):
        if a == b:
            errors.append(
                {
                    "field": "via" if hops else "destination",
                    "message": f"leg {i} goes from {a} to {b}: a transfer must cross a border on every leg",
                }
            )
    established = (
        tuple(code(f"established[{i}]", v, False) for i, v in enumerate(req.established)) if req.established else ()
    )
    subjects_in = (
        tuple(code(f"subjects_in[{i}]", v, False) for i, v in enumerate(req.subjects_in)) if req.subjects_in else ()
    )
    nationality = (
        tuple(code(f"nationality[{i}]", v, False) for i, v in enumerate(req.nationality)) if req.nationality else ()
    )
    collected_in = code("collected_in", req.collected_in, False) if req.collected_in is not None else None

    vocab = rs.vocabulary

    def members(field: str, values: tuple[str, ...], valid: list[str]) -> frozenset[str]:
        if not values:
            return frozenset()
        out = frozenset(values)
        if out <= valid_sets[field]:
            return out
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
        return out

    resolved = []
    for label in req.data_categories:
        cat = lk.resolve(label)
        if cat is not None and cat != label:
            notes.append(f"data category {label!r} read as {cat!r}")
        resolved.append(cat or label)
    cats = members("data_categories", tuple(resolved), values["data_categories"])
    plain: tuple[str, ...] = req.safeguards  # type: ignore[assignment]  # narrowed below when outcomes are given
    with_outcome: tuple[SafeguardOutcome, ...] = ()
    if not all(type(s) is str for s in req.safeguards):
        plain = tuple(s for s in req.safeguards if isinstance(s, str))
        with_outcome = tuple(s for s in req.safeguards if isinstance(s, SafeguardOutcome))
    sgs = members(
        "safeguards", plain + tuple(s.id for s in with_outcome) if with_outcome else plain, values["safeguards"]
    )
    seen_out: dict[str, str] = {}
    for s in with_outcome:
        if seen_out.setdefault(s.id, s.outcome) != s.outcome:
            errors.append({"field": "safeguards", "message": f"{s.id!r} is given with two outcomes"})
    # a safeguard that concluded unfavourably (an assessment finding protection inadequate, a refused approval)
    # meets nothing: only the outcome is kept, for the rules that turn on it
    refused = {s.id for s in with_outcome if s.outcome == "unfavourable"}
    if refused and refused & set(plain):
        errors.append(
            {
                "field": "safeguards",
                "message": f"{', '.join(sorted(refused & set(plain)))} given both plainly and as unfavourable",
            }
        )
    if refused:
        sgs = frozenset(sgs - refused)
    outcomes = frozenset(f"{s.id}:{s.outcome}" for s in with_outcome)
    purposes = members("purposes", req.purposes, values["purpose"])
    counts: dict[str, int] = {}
    for label, n in req.counts.items():
        cat = vocab.resolve(label)
        if cat is None:
            errors.append(
                {
                    "field": f"counts.{label}",
                    "message": f"unknown data category {label!r}; expected one of "
                    f"{', '.join(vocab.values_for('data_categories'))}",
                }
            )
            continue
        if cat not in cats:
            errors.append({"field": f"counts.{label}", "message": f"{cat!r} is counted but not in data_categories"})
        if req.subjects is not None and n > req.subjects:
            errors.append(
                {"field": f"counts.{label}", "message": f"{n} people exceed subjects ({req.subjects}) in all"}
            )
        counts[cat] = n
    for field in ("exporter", "sector", "purpose"):
        if req.__dict__[field] in valid_sets[field]:
            continue
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
    # legs: from the origin to each recipient in turn; transit hops are crossed, not legs
    legs: list[Leg] = []
    src, through = origin, []
    for c, transit, recipient in hops:
        if transit:
            through.append(c)
            continue
        legs.append(Leg(len(legs), src, c, recipient, tuple(through)))
        src, through = c, []
    legs.append(Leg(len(legs), src, dest, req.recipient, tuple(through)))
    for leg in legs:
        if leg.src == leg.dst:
            errors.append(
                {
                    "field": "via",
                    "message": f"leg {leg.hop} goes from {leg.src} to {leg.dst} through transit: a transfer must "
                    "cross a border on every leg",
                }
            )
    if errors:
        raise RequestError(errors)
    if any(t for _, t, _ in hops):
        notes.append(
            "transit through "
            + ", ".join(c for c, t, _ in hops if t)
            + ": not a recipient (no access); its rules are not consulted for the transfer"
        )
    # every value was validated above: a copy with the canonical values, not a second validation (hot path)
    canonical = _canonical(
        dict(
            origin=origin,
            destination=dest,
            via=tuple(
                c
                if not t and r == DEFAULT_RECIPIENT
                else Hop(jurisdiction=c, transit=t, recipient=DEFAULT_RECIPIENT if t else r)
                for c, t, r in hops
            ),
            data_categories=tuple(sorted(cats)),
            subjects=req.subjects,
            safeguards=tuple(sorted(sgs - {s.id for s in with_outcome}))
            + tuple(sorted(with_outcome, key=lambda s: s.id)),
            exporter=req.exporter,
            sector=req.sector,
            purpose=req.purpose,
            purposes=tuple(sorted(purposes)),
            exporter_role=req.exporter_role,
            exporter_size=req.exporter_size,
            established=tuple(sorted(set(established))),
            recipient=req.recipient,
            subjects_in=tuple(sorted(set(subjects_in))),
            nationality=tuple(sorted(set(nationality))),
            collected_in=collected_in,
            publicly_available=req.publicly_available,
            counts=dict(sorted(counts.items())),
            as_of=req.as_of or today or date.today(),
        )
    )
    where = frozenset(subjects_in) or frozenset({origin})
    return Normalised(
        request=canonical,
        categories=lk.closure(cats),
        safeguards=sgs,
        subjects=UNKNOWN_SUBJECTS if req.subjects is None else req.subjects,
        legs=tuple(legs),
        notes=tuple(notes),
        given=frozenset(cats),
        # `purpose` joins `purposes` unless it is left at its default beside them
        purposes=frozenset(purposes) | ({req.purpose} if not purposes or req.purpose != "general" else set()),
        outcomes=outcomes,
        established=frozenset(established) | {origin},
        subjects_in=where,
        nationality=frozenset(nationality) or where,
        collected_in=collected_in or origin,
        counts=tuple(sorted(counts.items())),
    )
