"""Airflow tests: collected only where Airflow is installed (the `airflow` extra's environment, .ci/run stage 2).

Each session gets a throw-away AIRFLOW_HOME with a SQLite metadata DB (`airflow db migrate`)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent

if importlib.util.find_spec("airflow") is None:
    collect_ignore_glob = ["*"]  # core environment: Airflow is an optional extra


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
