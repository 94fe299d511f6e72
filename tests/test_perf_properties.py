"""Properties of the performance work: every memo returns what an uncached engine returns, a reload invalidates
them, and the optimised durable-rules path (direct C calls, retraction, per-level projection, skipped levels)
agrees with the reference interpreter on a synthetic corpus with realistic rule shapes (bench/synth.py).

No timing here: benchmarks live in bench/ (python -m bench)."""

from __future__ import annotations

import json
import random
import sys
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from dfft.engine import Engine, RequestError
from dfft.engine.core import BackendName
from dfft.rules import load_ruleset
from dfft.rules.model import RuleSet

from .conftest import MINI, overcrowded
from .strategies import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.synth import synthetic_ruleset  # noqa: E402


@cache
def synth(rules: int = 28, jurisdictions: int = 6, seed: int = 3) -> RuleSet:
    return synthetic_ruleset(jurisdictions, rules, seed)


@cache
def mini() -> RuleSet:
    return load_ruleset(MINI)


@cache
def uncached(which: str, backend: BackendName = "durable") -> Engine:
    return Engine(synth() if which == "synth" else mini(), backend=backend, cache_size=0)


def js(d) -> str:
    return d.model_dump_json()


def without_engine(d) -> str:
    return d.model_copy(update={"engine": "-"}).model_dump_json()


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_optimised_durable_path_agrees_with_reference_on_synthetic_corpus(data):
    r = data.draw(requests(synth()))
    assert without_engine(uncached("synth").check(r)) == without_engine(uncached("synth", "reference").check(r))


@cache
def shared_cached(which: str) -> Engine:
    # one engine across all examples, so its fact memo fills up and later examples are answered partly from it
    return Engine(synth() if which == "synth" else mini(), cache_size=64)


@pytest.mark.parametrize("which", ["mini", "synth"])
@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_fact_memo_agrees_with_reference(which, data):
    rs = mini() if which == "mini" else synth()
    r = data.draw(requests(rs))
    assert without_engine(shared_cached(which).check(r)) == without_engine(uncached(which, "reference").check(r))


@pytest.mark.parametrize("which", ["mini", "synth"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_cached_equals_uncached(which, data):
    rs = mini() if which == "mini" else synth()
    pool = data.draw(st.lists(requests(rs), min_size=1, max_size=6))
    order = data.draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=20))
    cached = Engine(rs, cache_size=data.draw(st.sampled_from([1, 2, 64])))
    for i in order:
        r = pool[i]
        # the same request as a dict, with shuffled lists, and as a TransferRequest all hit the same answers
        variant = data.draw(st.sampled_from(["dict", "shuffled", "model"]))
        if variant == "shuffled":
            r = {
                **r,
                "data_categories": list(reversed(r["data_categories"])),
                "safeguards": list(reversed(r["safeguards"])),
            }
        elif variant == "model":
            r = cached.normalise(r).request
        assert js(cached.check(r)) == js(uncached(which).check(r))


def test_equal_values_of_different_types_do_not_share_a_memo_entry():
    eng = Engine(mini())
    base = dict(origin="JP", destination="VN", data_categories=["personal"], as_of="2026-06-01")
    for subjects in (1, True, 1.0, "1", 1, None):
        r = {**base, "subjects": subjects}
        try:
            expected = js(uncached("mini").check(r))
        except RequestError:
            with pytest.raises(RequestError):
                eng.check(r)
            continue
        assert js(eng.check(r)) == expected


def test_reload_invalidates_every_memo(tmp_path):
    a, b = synth(28, 6, 3), synth(28, 6, 4)
    assert a.hash != b.hash
    eng = Engine(a)
    rnd = random.Random(5)
    codes = sorted(set(a.jurisdictions) & set(b.jurisdictions))
    reqs = []
    for _ in range(60):
        o, d = rnd.sample(codes, 2)
        reqs.append(
            {
                "origin": o,
                "destination": d,
                "data_categories": ["personal", "health"],
                "subjects": rnd.choice([None, 10, 2_000_000]),
                "as_of": "2026-06-01",
            }
        )
    before = [js(eng.check(r)) for r in reqs]
    assert [js(eng.check(r)) for r in reqs] == before  # served from the memo
    eng.reload(b)
    fresh = Engine(b, cache_size=0)
    after = [eng.check(r) for r in reqs]
    assert [js(d) for d in after] == [js(fresh.check(r)) for r in reqs]
    assert all(d.ruleset.hash == b.hash for d in after)
    assert before != [js(d) for d in after]
    eng.reload(a)
    assert [js(eng.check(r)) for r in reqs] == before


def test_reload_with_a_broken_rule_set_keeps_the_old_one(mini_rs):
    from dfft.engine import CompileError

    eng = Engine(mini_rs)
    r = dict(origin="JP", destination="VN", data_categories=["personal"], subjects=5, as_of="2026-06-01")
    d = eng.check(r)
    with pytest.raises(CompileError):
        eng.reload(overcrowded(mini_rs))
    assert js(eng.check(r)) == js(d) and eng.ruleset is mini_rs


def test_long_run_keeps_durable_state_empty():
    import durable_rules_engine

    eng = uncached("synth")
    rs = synth()
    rnd = random.Random(9)
    codes = sorted(rs.jurisdictions)
    for i in range(400):
        o, d = rnd.sample(codes, 2)
        eng.check(
            {"origin": o, "destination": d, "data_categories": ["personal"], "subjects": i, "as_of": "2026-06-01"}
        )
    b = eng.backend
    for code, h in b._handles.items():
        try:
            assert json.loads(durable_rules_engine.get_facts(h, b._sid)) == [], code
        except durable_rules_engine.error as e:
            assert "309" in str(e)
