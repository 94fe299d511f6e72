"""The fast path of `normalise` (plain v1-shaped requests, no pydantic) gives exactly what the general path gives,
and anything it does not take in full -- another shape, a value of another type, an invalid value -- goes to the
general path, which judges it or words the errors as before. Also: the request's cached hash."""

from __future__ import annotations

import copy
import pickle
from datetime import date

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from dfft.engine import RequestError, request as rq
from dfft.engine.request import TransferRequest, normalise

from .strategies import requests, requests_v2


def same(a: rq.Normalised, b: rq.Normalised) -> None:
    assert a == b
    assert type(a) is type(b)
    assert a.request.model_dump_json() == b.request.model_dump_json()
    assert a.request.model_fields_set == b.request.model_fields_set
    assert a.request.__dict__ == b.request.__dict__
    assert list(a.request.__dict__) == list(b.request.__dict__)
    assert a.key == b.key


def both(data, rs, today=None):
    """(fast path's answer or None, the general path's answer or its RequestError)."""
    fast = rq._plain_dict(data, rs, today) if type(data) is dict else rq._plain_model(data, rs, today)
    try:
        slow = rq._normalise(data, rs, today)
    except RequestError as e:
        slow = e
    return fast, slow


@settings(max_examples=300)
@given(data=st.data())
def test_fast_path_is_the_general_path(corpus_rs, data):
    r = data.draw(requests(corpus_rs))
    fast, slow = both(r, corpus_rs)
    assert fast is not None  # every v1-shaped request of the strategy is valid and plain
    same(fast, slow)
    same(normalise(r, corpus_rs), slow)
    model = TransferRequest.model_validate(r)
    fast_m, slow_m = both(model, corpus_rs)
    assert fast_m is not None
    same(fast_m, slow_m)
    same(fast_m, slow)


@settings(max_examples=200)
@given(data=st.data())
def test_v2_requests_take_the_general_path_or_agree(corpus_rs, data):
    r = data.draw(requests_v2(corpus_rs))
    fast, slow = both(r, corpus_rs)
    if fast is not None:
        same(fast, slow)
    if isinstance(slow, RequestError):
        assert fast is None
        with pytest.raises(RequestError) as e:
            normalise(r, corpus_rs)
        assert e.value.errors == slow.errors
    else:
        same(normalise(r, corpus_rs), slow)


BASE = {"origin": "JP", "destination": "VN", "data_categories": ["personal"], "as_of": "2026-06-01"}


@pytest.mark.parametrize(
    "change",
    [
        {"origin": "jp "},  # spelled loosely: upper-cased and stripped by both paths
        {"destination": "de"},  # a member of a bloc (a note)
        {"via": ["SG"]},
        {"via": ("SG", "VN"), "destination": "US"},
        {"data_categories": ("personal", "health")},
        {"subjects": 0},
        {"subjects": 10**12},
        {"subjects": None},
        {"as_of": date(2026, 6, 1)},
        {"as_of": None},
        {"safeguards": []},
    ],
)
def test_plain_spellings_agree(corpus_rs, change):
    r = {**BASE, **change}
    fast, slow = both(r, corpus_rs, date(2026, 1, 2))
    assert fast is not None
    same(fast, slow)


@pytest.mark.parametrize(
    "change",
    [
        {"origin": "ZZ"},  # not covered
        {"origin": 7},
        {"destination": "XX"},  # not an ISO code
        {"destination": "JP"},  # no border crossed
        {"via": ["VN"]},  # via then destination VN: no border crossed
        {"via": ["JP"]},
        {"via": "SG"},  # a string, not a list
        {"via": ["SG"] * 9},  # too many hops
        {"data_categories": []},
        {"data_categories": ["nonsense"]},
        {"data_categories": ["x" * 65]},
        {"safeguards": ["nonsense"]},
        {"safeguards": [{"id": "consent", "outcome": "done"}]},
        {"subjects": -1},
        {"subjects": 10**12 + 1},
        {"subjects": True},
        {"subjects": 1.0},
        {"subjects": "5"},
        {"as_of": "2026-02-30"},
        {"as_of": "2026-6-1"},
        {"as_of": "2026-06-01T00:00"},
        {"as_of": 20260601},
        {"exporter": "nonsense"},
        {"sector": "nonsense"},
        {"purpose": "nonsense"},
        {"purposes": ["research"]},  # a v2 fact: the general path
        {"recipient": {"role": "processor"}},
        {"counts": {"personal": 3}},
        {"unknown_field": 1},
    ],
)
def test_what_the_fast_path_does_not_take(corpus_rs, change):
    r = {**BASE, **change}
    fast, slow = both(r, corpus_rs)
    assert fast is None
    if isinstance(slow, RequestError):
        with pytest.raises(RequestError) as e:
            normalise(r, corpus_rs)
        assert e.value.errors == slow.errors
    else:  # valid, but not plain: the general path's answer
        same(normalise(r, corpus_rs), slow)


def test_a_model_with_v2_facts_takes_the_general_path(corpus_rs):
    for change in (
        {"exporter_role": "processor"},
        {"exporter_size": "small"},
        {"established": ["SG"]},
        {"subjects_in": ["SG"]},
        {"nationality": ["SG"]},
        {"collected_in": "SG"},
        {"publicly_available": True},
        {"via": [{"jurisdiction": "SG", "transit": True}]},
        {"safeguards": [{"id": "consent", "outcome": "done"}]},
    ):
        m = TransferRequest.model_validate({**BASE, **change})
        fast, slow = both(m, corpus_rs)
        assert fast is None, change
        same(normalise(m, corpus_rs), slow)


def test_the_cached_hash_is_the_fields_hash():
    a = TransferRequest.model_validate({**BASE, "counts": {"personal": 3}, "subjects": 5})
    b = TransferRequest.model_validate({**BASE, "counts": {"personal": 3}, "subjects": 5})
    assert hash(a) == hash(b) and a == b
    hash(a)  # cached on a, not on b
    assert a == b and {a: 1}[b] == 1
    # copies never inherit the cache: one with other values hashes its own values
    c = a.model_copy(update={"subjects": 6})
    assert c != a and hash(c) == hash(
        TransferRequest.model_validate({**BASE, "counts": {"personal": 3}, "subjects": 6})
    )
    for d in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert d == a and hash(d) == hash(a)
    # the cache is not a field: not dumped, not compared, not part of the schema
    assert "_dfft_hash" not in a.model_dump() and "_dfft_hash" not in TransferRequest.model_json_schema()["properties"]
    with pytest.raises(ValidationError):  # still frozen
        a.subjects = 7
