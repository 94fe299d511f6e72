"""Properties of request model v2 (docs/rule-language.md, "Request model v2" and "Applicable law"), with hypothesis, on
the fixture bundle and the embedded corpus: the new facts keep the core's guarantees (determinism, durable-rules ==
reference, cached == uncached) and can only relax a verdict in the direction the law does (no access, transit,
same entity), never the other way."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings, strategies as st

from dfft.engine import Engine

from .strategies import requests_v2
from .test_properties import BUNDLES, engine, ruleset, sev, without_engine

pytestmark = pytest.mark.parametrize("name", BUNDLES)


def draw(data, name):
    return data.draw(requests_v2(ruleset(name)))


_cached: dict[str, Engine] = {}


def cached(name: str) -> Engine:
    if name not in _cached:
        _cached[name] = Engine(ruleset(name), cache_size=4096)
    return _cached[name]


@settings(max_examples=200)
@given(data=st.data())
def test_v2_compiler_fidelity_and_cache(name, data):
    """durable-rules == reference interpreter, and cached == uncached, on v2 requests (the applicable-law layer is
    shared, the matching is not)."""
    r = draw(data, name)
    d = engine(name).check(r)
    assert without_engine(d) == without_engine(engine(name, "reference").check(r))
    assert cached(name).check(r).model_dump_json() == d.model_dump_json()
    assert cached(name).check(copy.deepcopy(r)).model_dump_json() == d.model_dump_json()  # a memo hit
    assert d.regimes, "every decision names the regimes that governed it"


@settings(max_examples=200)
@given(data=st.data())
def test_no_access_never_more_severe_than_full_access(name, data):
    r = draw(data, name)
    full = {**r, "recipient": {**r.get("recipient", {}), "access": "full"}}
    none = {**r, "recipient": {**r.get("recipient", {}), "access": "none"}}
    assert sev(engine(name).check(none)) <= sev(engine(name).check(full))


@settings(max_examples=200)
@given(data=st.data())
def test_transit_never_more_severe_than_going_direct(name, data):
    """Data that only passes through X (no recipient, no access) is judged as the direct transfer: X adds nothing."""
    r = draw(data, name)
    hop = data.draw(st.sampled_from(["SG", "US", "JP", "CH", "AE"]))
    direct = {**r, "via": []}
    if hop in (r["origin"], r["destination"]) or r["origin"] == r["destination"]:
        return
    through = {**r, "via": [{"jurisdiction": hop, "transit": True}]}
    d, t = engine(name).check(direct), engine(name).check(through)
    assert sev(t) <= sev(d)
    assert (
        hop not in {g.jurisdiction for g in t.regimes}
        or hop in (r.get("established") or [])
        or any(g.basis == "reach" for g in t.regimes if g.jurisdiction == hop)
    )


@settings(max_examples=200)
@given(data=st.data())
def test_more_data_or_subjects_never_relaxes_v2(name, data):
    r = draw(data, name)
    vocab = ruleset(name).vocabulary
    base = sev(engine(name).check(r))
    extra = data.draw(st.sampled_from(sorted(vocab.data_categories)))
    assert sev(engine(name).check({**r, "data_categories": sorted({*r["data_categories"], extra})})) >= base
    if r.get("counts"):
        (cat, n), total = next(iter(r["counts"].items())), r["subjects"]
        assert sev(engine(name).check({**r, "counts": {cat: total}})) >= base if n <= total else True
        assert sev(engine(name).check({**r, "counts": {}})) >= base  # a category not counted counts everyone
    where = data.draw(st.sampled_from(["VN", "ID", "CN", "EU", "JP"]))
    wider = {**r, "nationality": sorted({*(r.get("nationality") or r.get("subjects_in") or [r["origin"]]), where})}
    assert sev(engine(name).check(wider)) >= base, "more people's data (another nationality) never relaxes"


@settings(max_examples=200)
@given(data=st.data())
def test_a_partial_coverage_decision_is_never_allowed_v2(name, data):
    r = draw(data, name)
    d = engine(name).check(r)
    if any(g.status == "open" for g in d.coverage):
        assert d.verdict != "allowed"


@settings(max_examples=150)
@given(data=st.data())
def test_unfavourable_outcome_meets_nothing(name, data):
    """A safeguard given with an unfavourable outcome (an assessment finding protection inadequate, a refused
    approval) is never better than not holding it at all."""
    r = draw(data, name)
    sg = data.draw(st.sampled_from(sorted(ruleset(name).vocabulary.safeguards)))
    plain = [s for s in r["safeguards"] if (s if isinstance(s, str) else s["id"]) != sg]
    refused = {**r, "safeguards": [*plain, {"id": sg, "outcome": "unfavourable"}]}
    assert sev(engine(name).check(refused)) >= sev(engine(name).check({**r, "safeguards": plain}))
