"""Run the test DAG with dag.test() and print task states and dfft XComs as one JSON line (DFFT-RESULT ...).

Run in a subprocess by test_dag.py, so the task logs (stdout/stderr) can be checked as Airflow writes them."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("dfft_guarded", Path(__file__).parent / "dags" / "dfft_guarded.py")
assert spec is not None and spec.loader is not None
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)

from airflow.models.xcom import XComModel  # noqa: E402
from airflow.utils.session import create_session  # noqa: E402

dr = mod.dag.test()
with create_session() as session:
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances(session=session)}
    xcoms = {}
    for row in session.scalars(XComModel.get_many(run_id=dr.run_id, dag_ids=dr.dag_id, key="dfft_decision")):
        xcoms[row.task_id] = XComModel.deserialize_value(row)
print(
    "DFFT-RESULT "
    + json.dumps({"state": str(getattr(dr.state, "value", dr.state)), "tasks": states, "xcoms": xcoms}, default=str)
)
sys.stdout.flush()
