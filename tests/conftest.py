from __future__ import annotations

import os
import signal
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from dfft.engine import Engine
from dfft.rules import load_ruleset

# The validated-bundle cache and the compile probe's memory (DFFT_CACHE_DIR) go to a folder of this test session, not
# the user's ~/.cache/dfft; subprocesses started by tests inherit it. Set it yourself to keep a cache between runs.
os.environ.setdefault("DFFT_CACHE_DIR", tempfile.mkdtemp(prefix="dfft-test-cache-"))

HERE = Path(__file__).parent
MINI = HERE / "fixtures" / "mini"
GOLDEN = HERE / "golden"

# CI runs a fixed, reproducible set of examples; set HYPOTHESIS_PROFILE=dev locally to explore new ones.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def overcrowded(rs, code: str = "JP", n: int = 500):
    """`rs` with `n` extra rules of `code` all testing one field: more than durable-rules can take on one node, so
    the compiler must refuse it."""
    from dfft.rules.model import Rule

    j = rs.jurisdictions[code]
    many = tuple(
        Rule(
            id=f"{code}-x{i}",
            jurisdiction=code,
            domain="ip",
            title="x",
            scope="exporter",
            citation=j.rules[0].citation,
            confidence="high",
            when={"field": "sector", "eq": "finance"},
            effect="condition",
        )
        for i in range(n)
    )
    return rs.model_copy(
        update={"jurisdictions": {**rs.jurisdictions, code: j.model_copy(update={"rules": j.rules + many})}}
    )


@pytest.fixture(scope="session")
def mini_rs():
    return load_ruleset(MINI)


@pytest.fixture(scope="session")
def mini_engine(mini_rs):
    return Engine(mini_rs, cache_size=0)


@pytest.fixture(scope="session")
def corpus_rs():
    return load_ruleset()


@pytest.fixture(scope="session")
def corpus_engine(corpus_rs):
    return Engine(corpus_rs, cache_size=0)


@pytest.fixture(scope="session")
def corpus_reference(corpus_rs):
    return Engine(corpus_rs, backend="reference", cache_size=0)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def pytest_configure(config):
    # `timeout` and CI runners stop a run with SIGTERM, which would end pytest without tearing fixtures down and
    # leave the PostgreSQL clusters of tests/api/pg.py (daemonised by pg_ctl) and other servers running. As a
    # KeyboardInterrupt, pytest still runs every finaliser before it exits.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
