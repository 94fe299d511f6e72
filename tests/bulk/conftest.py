from __future__ import annotations

import importlib.util

import pytest

HAVE_RAY = importlib.util.find_spec("ray") is not None
HAVE_ARROW = importlib.util.find_spec("pyarrow") is not None
NO_RAY = "Ray is not installed (pip install 'dfft[ray]'); .ci/run runs these tests in its .venv-ray stage"
NO_ARROW = "pyarrow is not installed (pip install 'dfft[ray]'); .ci/run runs these tests in its .venv-ray stage"


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance for the session: 2 CPUs and a small object store (Ray starts slowly on small
    machines; each test's RayBackend joins this one instead of starting its own)."""
    if not HAVE_RAY:
        pytest.skip(NO_RAY)
    import ray

    ray.init(num_cpus=2, object_store_memory=80 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
