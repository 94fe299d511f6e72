"""The properties of DESIGN.md, checked with hypothesis on the fixture bundle and on the embedded corpus.

Examples per property are set below (CI runs them derandomised, so a failure reproduces)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import timedelta
from functools import cache
from itertools import pairwise

import pytest
from hypothesis import given, settings, strategies as st

from dfft.engine import Engine
from dfft.engine.core import BackendName
from dfft.rules import load_ruleset
from dfft.rules.dump import dump_ruleset
from dfft.rules.model import RuleSet

from .conftest import MINI
from .strategies import requests

SEV = {"allowed": 0, "conditional": 1, "blocked": 2}
BUNDLES = ["mini", "corpus"]
N = {"mini": 150, "corpus": 300}


@cache
def ruleset(name: str) -> RuleSet:
    rs = load_ruleset(MINI if name == "mini" else None)
    if not rs.jurisdictions:
        pytest.skip("bundle has no jurisdictions")
    return rs


@cache
def engine(name: str, backend: BackendName = "durable") -> Engine:
    return Engine(ruleset(name), backend=backend, cache_size=0)


def sev(d) -> int:
    return SEV[d.verdict]


def without_engine(d) -> str:
    return d.model_copy(update={"engine": "-"}).model_dump_json()


def draw(data, name):
    return data.draw(requests(ruleset(name)))


pytestmark = pytest.mark.parametrize("name", BUNDLES)


@settings(max_examples=300)
@given(data=st.data())
def test_total_and_deterministic(name, data):
    r = draw(data, name)
    d1, d2 = engine(name).check(r), engine(name).check(r)
    assert d1.verdict in SEV
    assert d1.model_dump_json() == d2.model_dump_json()
    assert d1.findings, "every decision explains itself with at least one finding"


@settings(max_examples=300)
@given(data=st.data())
def test_compiler_fidelity(name, data):
    r = draw(data, name)
    assert without_engine(engine(name).check(r)) == without_engine(engine(name, "reference").check(r))


@settings(max_examples=300)
@given(data=st.data())
def test_adding_a_safeguard_never_raises_severity(name, data):
    r = draw(data, name)
    extra = data.draw(st.sampled_from(sorted(ruleset(name).vocabulary.safeguards)))
    more = {**r, "safeguards": sorted(set(r["safeguards"]) | {extra})}
    assert sev(engine(name).check(more)) <= sev(engine(name).check(r))


@settings(max_examples=300)
@given(data=st.data())
def test_more_data_never_lowers_severity(name, data):
    r = draw(data, name)
    extra = data.draw(st.sampled_from(sorted(ruleset(name).vocabulary.data_categories)))
    more = {**r, "data_categories": sorted(set(r["data_categories"]) | {extra})}
    base = sev(engine(name).check(r))
    assert sev(engine(name).check(more)) >= base
    if r["subjects"] is not None:
        bigger = data.draw(st.one_of(st.none(), st.integers(min_value=r["subjects"], max_value=10**9)))
        assert sev(engine(name).check({**r, "subjects": bigger})) >= base


@settings(max_examples=200)
@given(data=st.data())
def test_a_chain_is_at_least_as_severe_as_its_legs(name, data):
    r = draw(data, name)
    rs = ruleset(name)
    path = [r["origin"], *r["via"], r["destination"]]
    if len(path) < 3:
        return
    chain = engine(name).check(r)
    for i, (a, b) in enumerate(pairwise(path)):
        alone = engine(name).check({**r, "origin": a, "destination": b, "via": []})
        # judged alone, a later leg's exporter would also count as the data's origin (localisation);
        # in the chain it is not, so its origin-scoped findings are left out of the comparison
        worst = max(
            (
                SEV_OF_EFFECT[f.effect]
                for f in alone.findings
                if f.status == "applies" and (i == 0 or scope_of(rs, f.rule_id) != "origin")
            ),
            default=0,
        )
        assert sev(chain) >= worst, f"leg {a}->{b} alone is worse than the chain"


SEV_OF_EFFECT = {"allow": 0, "condition": 1, "block": 2}


def scope_of(rs, rule_id: str) -> str:
    """The scope of a rule, or of a coverage gap (Jurisdiction.uncovered) reported under its id."""
    for j in rs.jurisdictions.values():
        for u in j.uncovered:
            if u.id == rule_id:
                return u.scope
    return rs.rule(rule_id).scope


@settings(max_examples=300)
@given(data=st.data())
def test_no_rule_fires_outside_its_window(name, data):
    r = draw(data, name)
    d = engine(name).check(r)
    rs = ruleset(name)
    gaps = {u.id: u for j in rs.jurisdictions.values() for u in j.uncovered}
    for f in d.findings:
        if f.rule_id in gaps:  # a coverage gap reported outside its period would be a wrong "not allowed"
            assert gaps[f.rule_id].from_ <= d.as_of < gaps[f.rule_id].until, f.rule_id
        elif f.status != "none":
            assert rs.rule(f.rule_id).in_force(d.as_of), f.rule_id
    for t in d.trace:
        assert rs.rule(t.rule_id).in_force(d.as_of), t.rule_id


@settings(max_examples=300)
@given(data=st.data())
def test_unknown_is_never_allowed(name, data):
    """A decision that reports an open coverage gap (a regime that governed the transfer on that date but is not
    encoded) is never `allowed`; the gap is open exactly when the caller holds no legal review; with one, the gap is
    met and the verdict is what the encoded rules alone say."""
    r = draw(data, name)
    gaps = [(code, u) for code, j in sorted(ruleset(name).jurisdictions.items()) for u in j.uncovered]
    if gaps and data.draw(st.booleans()):  # half the time, aim the request at a declared gap (a day inside it)
        code, u = data.draw(st.sampled_from(gaps))
        day = data.draw(st.dates(min_value=u.from_, max_value=u.until - timedelta(days=1)))
        r = {**r, "origin": code, "via": [], "as_of": day.isoformat()}
        if r["destination"] == code:
            r["destination"] = "US" if code != "US" else "JP"
    d = engine(name).check(r)
    reviewed = "legal_review" in r.get("safeguards", [])
    for g in d.coverage:
        assert g.status == ("reviewed" if reviewed else "open")
    if any(g.status == "open" for g in d.coverage):
        assert d.verdict != "allowed"
        gating = {o.id: o for o in d.obligations if o.kind == "gating"}
        assert gating["dfft-legal-review"].one_of == ("legal_review",)
    if d.coverage and not reviewed:
        with_review = engine(name).check({**r, "safeguards": sorted({*r.get("safeguards", []), "legal_review"})})
        assert [g.id for g in with_review.coverage] == [g.id for g in d.coverage]
        assert all(g.status == "reviewed" for g in with_review.coverage)


@settings(max_examples=100)
@given(data=st.data())
def test_before_a_law_takes_effect_it_is_as_if_absent(name, data):
    rs = ruleset(name)
    laws = sorted(
        (code, key)
        for code, j in rs.jurisdictions.items()
        for key, law in j.laws.items()
        if law.effective_from and any(r.citation.law == key for r in j.rules)
    )
    if not laws:
        return
    code, key = data.draw(st.sampled_from(laws))
    law = rs.jurisdictions[code].laws[key]
    r = draw(data, name)
    before = data.draw(
        st.dates(
            max_value=law.effective_from,
            min_value=law.effective_from.replace(year=min(1990, law.effective_from.year - 1)),
        )
    )
    if before >= law.effective_from:
        return
    r["as_of"] = before.isoformat()
    j = rs.jurisdictions[code]
    stripped = rs.model_copy(
        update={
            "jurisdictions": {
                **rs.jurisdictions,
                code: j.model_copy(
                    update={
                        "rules": tuple(x for x in j.rules if x.citation.law != key),
                        "uncovered": tuple(u for u in j.uncovered if u.law != key),
                    }
                ),
            }
        }
    )
    with_law = Engine(rs, backend="reference", cache_size=0).check(r)
    without = Engine(stripped, backend="reference", cache_size=0).check(r)
    assert [(f.rule_id, f.effect, f.status) for f in with_law.findings] == [
        (f.rule_id, f.effect, f.status) for f in without.findings
    ]


@settings(max_examples=8)
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_rule_order_does_not_matter(name, seed, data):
    rs = ruleset(name)
    rnd = random.Random(seed)
    codes = list(rs.jurisdictions)
    rnd.shuffle(codes)
    shuffled = rs.model_copy(
        update={
            "jurisdictions": {
                c: rs.jurisdictions[c].model_copy(
                    update={"rules": tuple(rnd.sample(rs.jurisdictions[c].rules, len(rs.jurisdictions[c].rules)))}
                )
                for c in codes
            }
        }
    )
    assert shuffled.hash == rs.hash
    other = Engine(shuffled, cache_size=0)
    for _ in range(25):
        r = draw(data, name)
        assert other.check(r).model_dump_json() == engine(name).check(r).model_dump_json()


def test_round_trip(name, tmp_path):
    rs = ruleset(name)
    again = load_ruleset(dump_ruleset(rs, tmp_path / "bundle"))
    assert again == rs and again.hash == rs.hash


def test_same_decision_in_another_process(name):
    rs = ruleset(name)
    rnd = random.Random(7)
    reqs: list[dict] = []
    covered = sorted(rs.jurisdictions)
    cats = sorted(rs.vocabulary.data_categories)
    for _ in range(40):
        o, d = rnd.sample(covered, 2)
        reqs.append(
            {
                "origin": o,
                "destination": d,
                "data_categories": rnd.sample(cats, 2),
                "subjects": rnd.choice([None, 10, 200_000]),
                "as_of": "2026-06-01",
            }
        )
    here = [engine(name).check(r).model_dump_json() for r in reqs]
    bundle = str(MINI) if name == "mini" else ""
    code = (
        "import json,sys\nfrom dfft.engine import Engine\nfrom dfft.rules import load_ruleset\n"
        f"e=Engine(load_ruleset({bundle!r} or None),cache_size=0)\n"
        "print(json.dumps([e.check(r).model_dump_json() for r in json.load(sys.stdin)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(reqs), capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == here
