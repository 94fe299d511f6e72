"""Dagster tests: run only where Dagster is installed (the `dagster` extra's environment, .ci/run's Dagster stage);
in the core environment each module skips with a visible reason. Nothing here imports Dagster."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def api_url():
    """A real dfft API (uvicorn + create_app on the fixture bundle) on a free loopback port; DFFT_API_KEY is set to a
    check-scope key meanwhile."""
    from tests.conftest import MINI
    from tests.orchestration.servers import running_api

    with running_api(MINI) as url:
        yield url
