"""What-if engine pool: an engine evicted from the pool is closed and freed (garbage-collected) once no analysis
holds it, so the memory of many distinct scenarios is bounded by the pool size (issue 14)."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

from dfft.whatif.context import EnginePool, Engines

REQ = {"origin": "JP", "destination": "VN", "data_categories": ["personal"], "subjects": 1000}


def variants(rs, n: int) -> list:
    # distinct rule sets (distinct hashes), each needing its own compiled engine
    return [rs.model_copy(update={"version": f"9.9.{i}"}) for i in range(n)]


def test_an_evicted_engine_is_closed_and_collected(corpus_rs):
    pool = EnginePool(limit=1)
    a, b = variants(corpus_rs, 2)
    e = pool.lease(a)
    e.check(REQ)
    ref = weakref.ref(e)
    e.release()
    del e
    pool.lease(b).release()  # evicts a's engine
    assert pool.evicted == 1 and len(pool) == 1
    gc.collect()
    assert ref() is None, "an evicted engine is still referenced: " + repr(gc.get_referrers(ref()) if ref() else "")


def test_an_engine_evicted_while_leased_lives_until_released_then_is_collected(corpus_rs):
    pool = EnginePool(limit=1)
    a, b = variants(corpus_rs, 2)
    with Engines(a, pool=pool) as analysis:
        d = analysis.engine()  # leased by this analysis
        ref = weakref.ref(d.engine)
        pool.lease(b).release()  # evicted while in use: must keep working
        assert d.check(REQ).verdict in ("allowed", "conditional", "blocked")
        assert not ref().closed
        del d
    gc.collect()
    assert ref() is None


def test_memory_of_many_scenarios_is_bounded_by_the_pool(corpus_rs):
    """tracemalloc: compiling 8 more distinct engines through a pool of 2 leaves no more Python memory behind
    than the first few did (evicted engines, their memos and decisions are freed)."""
    pool = EnginePool(limit=2)
    rulesets = variants(corpus_rs, 12)
    refs = []

    def run(batch: list) -> None:
        for rs in batch:
            with Engines(rs, pool=pool) as an:
                eng = an.engine()
                for i in range(50):
                    eng.check({**REQ, "subjects": 1000 + i})
                refs.append(weakref.ref(eng.engine))
                del eng

    run(rulesets[:4])
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run(rulesets[4:])
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert sum(r() is not None for r in refs) <= pool.limit
    # a compiled engine with its memos is well over 1 MB of Python objects: 8 leaked ones would be far above this
    assert grown < 4 * 1024 * 1024, f"{grown / 1e6:.1f} MB left after 8 evictions"
