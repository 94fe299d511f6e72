"""Airflow tests: run only where Airflow is installed (the `airflow` extra's environment, .ci/run's Airflow stage); in
the core environment each module skips with a visible reason (pytest.importorskip). Nothing here imports Airflow.

Each session gets a throw-away AIRFLOW_HOME with a SQLite metadata DB (`airflow db migrate`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent

# Tests that import Airflow in this process (the hook, the provider schema) get a throw-away AIRFLOW_HOME too, so
# Airflow writes no airflow.cfg into the user's home.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="dfft-airflow-pytest-"))


@pytest.fixture(scope="session")
def airflow_env():
    home = Path(tempfile.mkdtemp(prefix="dfft-airflow-home-"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(HERE / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    env.pop("DFFT_API_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    yield env
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def api_url():
    """A real dfft API on the fixture bundle, reachable from the dag.test() subprocess."""
    from tests.conftest import MINI
    from tests.orchestration.servers import running_api

    with running_api(MINI) as url:
        yield url
