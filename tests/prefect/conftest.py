"""Prefect tests: run only where Prefect is installed (the `prefect` extra's environment, .ci/run's Prefect stage);
in the core environment each module skips with a visible reason. Nothing here imports Prefect."""

from __future__ import annotations

import os
import tempfile

import pytest

# Before the test module imports Prefect: its settings and local files go to a throw-away PREFECT_HOME, not ~/.prefect.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="dfft-prefect-home-"))


@pytest.fixture(scope="module")
def api_url():
    """A real dfft API (uvicorn + create_app on the fixture bundle) on a free loopback port; DFFT_API_KEY is set to a
    check-scope key meanwhile."""
    from tests.conftest import MINI
    from tests.orchestration.servers import running_api

    with running_api(MINI) as url:
        yield url
