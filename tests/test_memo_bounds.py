"""Memos are bounded by (estimated) bytes as well as by count (issue 10, item 2), and a byte-bounded memo answers
exactly what an uncached engine answers."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings, strategies as st

from dfft.engine import Engine
from dfft.engine.core import DEFAULT_MEMO_BYTES, decision_bytes, memo_bytes

from .strategies import requests
from .test_perf_properties import js, mini, synth, uncached


@pytest.mark.parametrize("which", ["mini", "synth"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_byte_bounded_memos_equal_uncached_and_stay_in_budget(which, data):
    rs = mini() if which == "mini" else synth()
    budget = data.draw(st.sampled_from([0, 6_000, 40_000, 400_000]))
    eng = Engine(rs, memo_budget=budget)
    pool = data.draw(st.lists(requests(rs), min_size=1, max_size=8))
    for i in data.draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=25)):
        assert js(eng.check(pool[i])) == js(uncached(which).check(pool[i]))
        assert eng._cache_bytes + eng._raw_bytes <= budget
        assert eng._cache_bytes == sum(decision_bytes(d) for d in eng._cache.values())
        assert eng.backend._memo_size <= budget // 4 and len(eng._parts) * 1024 <= max(budget // 4, 1024)


def test_memo_evicts_by_bytes_long_before_the_count_limit():
    eng = Engine(mini(), memo_budget=50_000)
    base = dict(origin="JP", destination="VN", data_categories=["personal"], as_of="2026-06-01")
    for n in range(200):
        eng.check({**base, "subjects": n})
    assert eng.cache_size == 65536 and 0 < len(eng._cache) < 200 and eng._cache_bytes <= 25_000


def test_the_memo_key_includes_the_date_passed_per_call():
    eng = Engine(mini())
    r = dict(origin="VN", destination="JP", data_categories=["personal"], subjects=1000)
    a = eng.check(r, date(2025, 1, 1))
    b = eng.check(r, date(2026, 6, 1))
    assert (a.verdict, b.verdict) == ("allowed", "conditional")
    assert eng.check(r, date(2025, 1, 1)) is a and str(a.as_of) == "2025-01-01"


def test_memo_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("DFFT_MEMO_BYTES", raising=False)
    assert memo_bytes() == DEFAULT_MEMO_BYTES == 64 * 1024 * 1024
    monkeypatch.setenv("DFFT_MEMO_BYTES", "1_000_000")
    assert memo_bytes() == 1_000_000 and Engine(mini()).memo_budget == 1_000_000
    monkeypatch.setenv("DFFT_MEMO_BYTES", "lots")
    with pytest.raises(ValueError, match="DFFT_MEMO_BYTES"):
        memo_bytes()
