"""The test DAG, run for real with dag.test() on the installed Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.orchestration.servers import free_port

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def run(airflow_env, api_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dag")
    env = {
        **airflow_env,
        "DFFT_TEST_SHIPPED_FILE": str(tmp / "shipped.txt"),
        "DFFT_TEST_AUDIT_FILE": str(tmp / "audit.jsonl"),
        "DFFT_TEST_API_URL": api_url,
        "DFFT_API_KEY": os.environ["DFFT_API_KEY"],
        "DFFT_TEST_DOWN_URL": f"http://127.0.0.1:{free_port()}",
    }
    proc = subprocess.run(
        [sys.executable, str(HERE / "run_dag.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=HERE.parents[1],
    )
    out = proc.stdout + proc.stderr
    lines = [x for x in proc.stdout.splitlines() if x.startswith("DFFT-RESULT ")]
    assert lines, f"run_dag.py printed no result (rc {proc.returncode}):\n{out[-6000:]}"
    result = json.loads(lines[-1][len("DFFT-RESULT ") :])
    shipped = (tmp / "shipped.txt").read_text().split() if (tmp / "shipped.txt").exists() else []
    audit = (
        [json.loads(x) for x in (tmp / "audit.jsonl").read_text().splitlines()]
        if (tmp / "audit.jsonl").exists()
        else []
    )
    return {**result, "log": out, "shipped": shipped, "audit": audit}


def test_run_fails_overall_because_some_tasks_are_blocked(run):
    assert run["state"] == "failed"


def test_allowed_task_runs(run):
    assert run["tasks"]["ship_allowed"] == "success"
    assert "allowed" in run["shipped"]
    assert run["xcoms"]["ship_allowed"]["verdict"] == "allowed"


def test_blocked_task_fails_with_the_decision_in_the_log(run):
    assert run["tasks"]["ship_blocked"] == "failed"
    assert "blocked" not in run["shipped"]
    log = run["log"]
    assert "VN -> SG [core_data] as of 2026-06-01: BLOCKED" in log
    assert "VN-core: core data stays -- Fixture CSL, Art. 26" in log
    x = run["xcoms"]["ship_blocked"]
    assert x["verdict"] == "blocked" and x["proceed"] is False
    assert "VN-core" in [f["rule_id"] for f in x["decision"]["findings"]]


def test_conditional_fails_when_configured_to(run):
    assert run["tasks"]["check_conditional_fail"] == "failed"
    assert run["tasks"]["ship_after_fail"] == "upstream_failed"
    assert "after_fail" not in run["shipped"]
    assert run["xcoms"]["check_conditional_fail"]["verdict"] == "conditional"
    assert "gating obligations not met (on_conditional=fail)" in run["log"]


def test_conditional_warns_and_proceeds_when_configured_to(run):
    assert run["tasks"]["check_conditional_warn"] == "success"
    assert run["tasks"]["ship_after_warn"] == "success" and "after_warn" in run["shipped"]
    x = run["xcoms"]["check_conditional_warn"]
    assert x["verdict"] == "conditional" and x["proceed"] is True
    assert x["decision"]["obligations"][0]["id"] == "JP-ob-consent"
    assert "on_conditional=warn: proceeding" in run["log"]


def test_transfer_derived_from_own_lineage(run):
    assert run["tasks"]["copy_designs"] == "failed" and "designs" not in run["shipped"]
    x = run["xcoms"]["copy_designs"]
    assert x["request"]["origin"] == "JP" and x["request"]["destination"] == "KP"
    assert x["request"]["data_categories"] == ["controlled_technology"] and x["verdict"] == "blocked"


def test_transfer_derived_from_another_tasks_lineage(run):
    assert run["tasks"]["check_customers"] == "success"
    assert run["tasks"]["copy_customers"] == "success" and "customers" in run["shipped"]
    x = run["xcoms"]["check_customers"]
    assert (x["request"]["origin"], x["request"]["destination"], x["verdict"]) == ("JP", "VN", "allowed")


def test_api_mode(run):
    assert run["tasks"]["check_api_blocked"] == "failed"
    assert run["xcoms"]["check_api_blocked"]["mode"] == "api"
    assert run["xcoms"]["check_api_blocked"]["verdict"] == "blocked"
    assert run["tasks"]["check_api_allowed"] == "success"
    assert run["xcoms"]["check_api_allowed"]["verdict"] == "allowed"


def test_api_down_fails_closed_unless_configured(run):
    assert run["tasks"]["check_api_down"] == "failed"
    x = run["xcoms"]["check_api_down"]
    assert x["reason"] == "unavailable" and x["decision"] is None and "unreachable" in x["error"]
    assert "failing closed (on_unavailable=block)" in run["log"]
    assert run["tasks"]["check_api_down_allow"] == "success"
    assert run["xcoms"]["check_api_down_allow"]["proceed"] is True


def test_in_process_decisions_reach_the_audit_sink(run):
    by_task = {r["context"]["task_id"]: r for r in run["audit"]}
    assert by_task["ship_allowed"]["verdict"] == "allowed" and by_task["ship_allowed"]["outcome"] == "proceed"
    assert by_task["ship_blocked"]["verdict"] == "blocked" and by_task["ship_blocked"]["outcome"] == "stop"
    assert by_task["ship_blocked"]["context"]["dag_id"] == "dfft_guarded"
    assert by_task["check_conditional_warn"]["reason"] == "conditional"


def test_provider_is_registered_with_airflow(airflow_env):
    code = (
        "from airflow.providers_manager import ProvidersManager as P; m = P(); "
        "print('dfft' in m.providers, 'transfer_check' in m.taskflow_decorators)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=airflow_env, capture_output=True, text=True, timeout=300)
    assert out.stdout.split()[-2:] == ["True", "True"], out.stdout + out.stderr
