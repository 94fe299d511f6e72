"""Hypothesis strategies for transfer requests, built from a rule set so they hit its boundaries:
dates around every effective date, volumes around every threshold, every code, category and safeguard."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

from hypothesis import strategies as st

from dfft.rules.conditions import walk
from dfft.rules.model import RuleSet

UNCOVERED = ["BR", "KP", "CH", "AE", "ZA"]


_memo: dict[int, tuple] = {}


def boundaries(rs: RuleSet) -> tuple[list[date], list[int]]:
    if id(rs) in _memo:
        return _memo[id(rs)][1]
    days = {date(2018, 1, 1), date(2023, 6, 1), date(2025, 1, 1), date(2026, 6, 1), date(2028, 1, 1)}
    counts = {0, 1, 50, 1000, 100_000, 10_000_000}
    lists = [lst for j in rs.jurisdictions.values() for lst in j.lists.values()] + list(rs.groups.values())
    for r in rs.all_rules():
        for d in (r.effective_from, r.effective_until):
            if d:
                days |= {d - timedelta(days=1), d}
        for cond in (r.when, r.unless):
            for leaf, _ in walk(cond or {}):
                if leaf.get("field") == "subjects":
                    v = next(v for k, v in leaf.items() if k != "field")
                    counts |= {max(v - 1, 0), v, v + 1}
    for j in rs.jurisdictions.values():
        for u in j.uncovered:  # coverage gaps: the days around their edges
            days |= {u.from_ - timedelta(days=1), u.from_, u.until - timedelta(days=1), u.until}
    for lst in lists:
        for m in lst.members:
            for d in (m.from_, m.until):
                if d:
                    days |= {d - timedelta(days=1), d}
    _memo[id(rs)] = (rs, (sorted(days), sorted(counts)))  # keep rs alive so its id is not reused
    return _memo[id(rs)][1]


def requests(rs: RuleSet, max_via: int = 2) -> st.SearchStrategy[dict]:
    covered = sorted(rs.jurisdictions)
    days, counts = boundaries(rs)
    vocab = rs.vocabulary

    @st.composite
    def build(draw):
        origin = draw(st.sampled_from(covered))
        via = draw(st.lists(st.sampled_from(covered), max_size=max_via))
        dest = draw(st.sampled_from(covered + [c for c in UNCOVERED if c not in covered]))
        path = [origin, *via, dest]
        if any(a == b for a, b in pairwise(path)):
            via = []
            if dest == origin:
                dest = next(c for c in covered + UNCOVERED if c != origin)
        return dict(
            origin=origin,
            via=via,
            destination=dest,
            data_categories=draw(
                st.lists(st.sampled_from(sorted(vocab.data_categories)), min_size=1, max_size=4, unique=True)
            ),
            subjects=draw(st.one_of(st.none(), st.sampled_from(counts))),
            safeguards=draw(st.lists(st.sampled_from(sorted(vocab.safeguards)), max_size=4, unique=True)),
            exporter=draw(st.sampled_from(sorted(vocab.exporters))),
            sector=draw(st.sampled_from(sorted(vocab.sectors))),
            purpose=draw(st.sampled_from(sorted(vocab.purposes))),
            as_of=draw(st.sampled_from(days)).isoformat(),
        )

    return build()


V2_CODES = ["EU", "JP", "VN", "ID", "PH", "US", "CN", "SG", "BR", "KR"]


def requests_v2(rs: RuleSet, max_via: int = 2) -> st.SearchStrategy[dict]:
    """v1 requests with the facts of request model v2 drawn at random: parties, roles, access, transit hops, where the
    subjects are and their nationality, counts per category, purposes and safeguard outcomes."""
    from dfft.rules.schema import ACCESS, OUTCOMES, RECIPIENT_KINDS, RECIPIENT_ROLES, RELATIONS, ROLES, SIZES

    codes = [c for c in V2_CODES if c in rs.jurisdictions or c in UNCOVERED or c in ("US", "BR")]
    vocab = rs.vocabulary
    recipient = st.fixed_dictionaries(
        {},
        optional={
            "relation": st.sampled_from(RELATIONS),
            "role": st.sampled_from(RECIPIENT_ROLES),
            "access": st.sampled_from(ACCESS),
            "kind": st.sampled_from(RECIPIENT_KINDS),
        },
    )

    @st.composite
    def build(draw):
        r = draw(requests(rs, max_via))
        via = []
        for v in r["via"]:
            choice = draw(st.integers(0, 2))
            via.append(
                v
                if choice == 0
                else {"jurisdiction": v, "transit": True}
                if choice == 1
                else {"jurisdiction": v, "recipient": draw(recipient)}
            )
        r["via"] = via
        # a transit hop between two equal codes would join them into one leg: keep such draws v1-shaped
        path = [
            r["origin"],
            *(
                v if isinstance(v, str) else v["jurisdiction"]
                for v in via
                if isinstance(v, str) or not v.get("transit")
            ),
            r["destination"],
        ]
        if any(a == b for a, b in pairwise(path)):
            r["via"] = [v if isinstance(v, str) else v["jurisdiction"] for v in via]
        extra = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "exporter_role": st.sampled_from(ROLES),
                    "exporter_size": st.sampled_from(SIZES),
                    "established": st.lists(st.sampled_from(codes), max_size=2, unique=True),
                    "recipient": recipient,
                    "subjects_in": st.lists(st.sampled_from(codes), max_size=2, unique=True),
                    "nationality": st.lists(st.sampled_from(codes), max_size=2, unique=True),
                    "collected_in": st.sampled_from(codes),
                    "publicly_available": st.booleans(),
                    "purposes": st.lists(st.sampled_from(sorted(vocab.purposes)), max_size=2, unique=True),
                },
            )
        )
        r.update(extra)
        if draw(st.booleans()) and r["safeguards"]:
            sg = r["safeguards"].pop()
            r["safeguards"].append({"id": sg, "outcome": draw(st.sampled_from(OUTCOMES))})
        if r["subjects"] is not None and draw(st.booleans()):
            cat = draw(st.sampled_from(r["data_categories"]))
            r["counts"] = {cat: draw(st.integers(0, r["subjects"]))}
        return r

    return build()
