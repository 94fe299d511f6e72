"""Properties of what-if analyses (hypothesis, derandomised in CI like the rest of the suite)."""

from __future__ import annotations

from functools import cache

from hypothesis import assume, given, settings, strategies as st

from dfft.rules import load_ruleset
from dfft.whatif import Engines, ScenarioError, parse_scenario, remedy
from dfft.whatif.context import SEVERITY
from dfft.whatif.diff import compare

from ..conftest import MINI
from ..strategies import requests


@cache
def rs():
    return load_ruleset(MINI)


@cache
def engines(backend: str = "durable") -> Engines:
    return Engines(rs(), backend=backend)


def scenarios(request: dict) -> st.SearchStrategy[dict]:
    """Random scenarios over the fixture bundle; fact changes add what the request lacks and remove what it holds
    (the case where swapping adds and removes is an exact inverse)."""
    r = rs()
    vocab = r.vocabulary
    held = set(request["safeguards"])
    lists = sorted(r.groups) + sorted(f"{c}.{n}" for c, j in r.jurisdictions.items() for n in j.lists)
    ids = sorted(x.id for x in r.all_rules())
    day = st.dates(min_value=__import__("datetime").date(2015, 1, 1), max_value=__import__("datetime").date(2030, 1, 1))
    codes = st.sampled_from(["JP", "SG", "VN", "EU", "GB", "ID", "TH", "KP"])
    member = st.one_of(codes, st.builds(lambda c, f: {"code": c, "from": f}, codes, day))
    return st.fixed_dictionaries(
        {"name": st.just("random")},
        optional={
            "facts": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "where": st.fixed_dictionaries({}, optional={"destination": st.sampled_from(lists)}),
                        "add_safeguards": st.lists(
                            st.sampled_from(sorted(set(vocab.safeguards) - held)), max_size=2, unique=True
                        ),
                        "remove_safeguards": st.lists(st.sampled_from(sorted(held)), max_size=2, unique=True)
                        if held
                        else st.just([]),
                    },
                ),
                max_size=1,
            ),
            "law": st.fixed_dictionaries(
                {},
                optional={
                    "lists": st.lists(
                        st.fixed_dictionaries(
                            {"list": st.sampled_from(lists)},
                            optional={"add": st.lists(member, max_size=2), "remove": st.lists(codes, max_size=2)},
                        ),
                        max_size=2,
                    ),
                    "disable_rules": st.lists(st.sampled_from(ids), max_size=2, unique=True),
                    "rule_dates": st.lists(
                        st.fixed_dictionaries({"rule": st.sampled_from(ids), "effective_from": day}), max_size=1
                    ),
                },
            ),
        },
    )


def valid(doc: dict):
    """Random law changes can be invalid (disabling the rule that derives a flag others test): those are refused
    with a clear error, which is the point; the properties are about valid scenarios."""
    try:
        return parse_scenario(_unique_adds(doc), rs())
    except ScenarioError:
        assume(False)


def _unique_adds(doc: dict) -> dict:
    """A code added twice to one list in one change keeps only the last entry; keep the draw simple."""
    for lc in doc.get("law", {}).get("lists", []):
        seen, add = set(), []
        for a in reversed(lc.get("add", [])):
            c = a if isinstance(a, str) else a["code"]
            if c not in seen:
                seen.add(c)
                add.append(a)
        lc["add"] = list(reversed(add))
    return doc


@settings(max_examples=60)
@given(data=st.data())
def test_empty_scenario_changes_nothing(data):
    r = data.draw(requests(rs()))
    sc = parse_scenario({"name": "empty"}, rs())
    assert sc.empty and sc.apply_law(rs()) is rs() and sc.apply_request(r, rs()) == r
    e = engines()
    base = e.judge(r)
    d = compare("x", base, e.judge(r, sc), sc)
    assert not d.changed and base.model_dump_json() == e.judge(r, sc).model_dump_json()


@settings(max_examples=60)
@given(data=st.data())
def test_a_scenario_and_its_inverse_cancel(data):
    r = data.draw(requests(rs()))
    sc = valid(data.draw(scenarios(r)))
    inv = sc.inverse(rs())
    changed = sc.apply_law(rs())
    assert inv.apply_law(changed).hash == rs().hash
    # facts: applying the scenario then its inverse gives the request back (where-lists judged on the changed law)
    e = engines("reference")
    there = sc.apply_request(r, changed)
    back = inv.apply_request(there, rs())
    assert sorted(back.get("safeguards", [])) == sorted(r["safeguards"])
    assert e.judge(back).model_dump_json() == e.judge(r).model_dump_json()


@settings(max_examples=40)
@given(data=st.data())
def test_remedies_deliver_the_promised_verdict(data):
    r = data.draw(requests(rs(), max_via=1))
    e = engines()
    res = remedy(e, r, max_size=3)
    base = e.judge(r)
    assert res.verdict == base.verdict
    if base.verdict == "allowed":
        assert res.remedies == ()
    for rem in res.remedies:
        d = e.judge({**r, "safeguards": sorted(set(r["safeguards"]) | set(rem.safeguards))})
        assert d.verdict == rem.verdict and SEVERITY[d.verdict] <= SEVERITY[rem.target]
        # minimal: dropping any one safeguard of the set misses the target
        for s in rem.safeguards:
            fewer = sorted(set(r["safeguards"]) | (set(rem.safeguards) - {s}))
            assert SEVERITY[e.judge({**r, "safeguards": fewer}).verdict] > SEVERITY[rem.target]


@settings(max_examples=40)
@given(data=st.data())
def test_adding_a_safeguard_never_raises_severity_under_a_scenario(data):
    """Remedy search prunes supersets on this property; check it on changed rule sets too."""
    r = data.draw(requests(rs()))
    sc = valid(data.draw(scenarios(r)))
    e = engines("reference")
    extra = data.draw(st.sampled_from(sorted(rs().vocabulary.safeguards)))
    a = e.judge(r, sc)
    b = e.judge({**r, "safeguards": sorted(set(r["safeguards"]) | {extra})}, sc)
    assert SEVERITY[b.verdict] <= SEVERITY[a.verdict]
