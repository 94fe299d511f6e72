"""The test DAG, run for real with dag.test() on the installed Airflow, with the OpenLineage provider writing the
task events to a file (its file transport), and the dfft connection `dfft_test` from AIRFLOW_CONN_DFFT_TEST."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

pytest.importorskip(
    "airflow", reason="Airflow is not installed: tests/airflow runs in .ci/run's Airflow stage (.venv-airflow)"
)

from tests.orchestration.servers import free_port  # noqa: E402

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def run(airflow_env, api_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dag")
    port = urllib.parse.urlsplit(api_url).port
    env = {
        **airflow_env,
        "DFFT_TEST_SHIPPED_FILE": str(tmp / "shipped.txt"),
        "DFFT_TEST_AUDIT_FILE": str(tmp / "audit.jsonl"),
        "DFFT_TEST_API_URL": api_url,
        "DFFT_API_KEY": os.environ["DFFT_API_KEY"],
        "DFFT_TEST_DOWN_URL": f"http://127.0.0.1:{free_port()}",
        # the dfft connection: URL (host + port) and key (password), as a secrets backend would hand it over
        "AIRFLOW_CONN_DFFT_TEST": json.dumps(
            {"conn_type": "dfft", "host": "http://127.0.0.1", "port": port, "password": os.environ["DFFT_API_KEY"]}
        ),
        # OpenLineage: every task event as one JSON line in a file
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(tmp / "openlineage.jsonl"), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__DISABLED": "False",
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
    ol = tmp / "openlineage.jsonl"
    events = _json_stream(ol.read_text()) if ol.exists() else []
    (tmp / "run.log").write_text(out)  # kept for reading when a test fails
    return {**result, "log": out, "shipped": shipped, "audit": audit, "lineage": events}


def _json_stream(text: str) -> list[dict]:
    """The events in the file transport's output: JSON objects one after another (the listener writes from forked
    processes, so two events can share a line)."""
    decoder, i = json.JSONDecoder(), 0
    events: list[dict] = []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return events
        obj, i = decoder.raw_decode(text, i)
        events.append(obj)


def _lineage(run, task_id: str, event_type: str) -> dict:
    """The OpenLineage run event of `task_id` of type COMPLETE / FAIL."""
    hits = [
        e
        for e in run["lineage"]
        if e.get("eventType") == event_type and e.get("job", {}).get("name", "").endswith("." + task_id)
    ]
    assert hits, (
        f"no {event_type} event for {task_id}: {[(e.get('eventType'), e['job']['name']) for e in run['lineage']]}"
    )
    return hits[-1]


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


def test_v2_facts_reach_the_request(run):
    assert run["tasks"]["check_v2_facts"] == "success"
    assert run["tasks"]["ship_after_v2_facts"] == "success" and "after_v2_facts" in run["shipped"]
    x = run["xcoms"]["check_v2_facts"]
    assert x["request"]["recipient"]["access"] == "none"
    assert x["verdict"] == "allowed"
    assert [n["id"] for n in x["decision"]["not_transfers"]] == ["JP-no-access"]


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


def test_connection_supplies_url_and_key(run):
    assert run["tasks"]["check_conn_blocked"] == "failed"
    x = run["xcoms"]["check_conn_blocked"]
    assert x["mode"] == "api" and x["verdict"] == "blocked" and x["decision_id"]
    assert run["tasks"]["ship_via_conn"] == "success" and "via_conn" in run["shipped"]
    assert run["xcoms"]["ship_via_conn"]["mode"] == "api" and run["xcoms"]["ship_via_conn"]["verdict"] == "allowed"


def test_api_url_api_key_and_on_conditional_are_templated(run):
    assert run["tasks"]["check_templated"] == "success"
    x = run["xcoms"]["check_templated"]
    assert x["mode"] == "api" and x["verdict"] == "conditional" and x["proceed"] is True  # params.policy == "warn"


def test_the_api_key_never_reaches_the_logs(run):
    # (dag.test() prints task output unredacted, so this shows the provider never logs the key; that Airflow's
    # masker knows it is test_hook.py::test_the_key_is_registered_with_the_secrets_masker)
    assert os.environ["DFFT_API_KEY"] not in run["log"]


def test_deprecated_names_still_work_and_warn(run):
    # check_conditional_fail is a TransferCheckOperator, ship_blocked a @transfer_check task
    assert run["tasks"]["check_conditional_fail"] == "failed" and run["tasks"]["ship_blocked"] == "failed"
    assert run["xcoms"]["check_conditional_fail"]["reason"] == "conditional"
    assert run["xcoms"]["ship_blocked"]["verdict"] == "blocked"
    assert "transfer_check is deprecated" in run["log"]


def test_openlineage_events_carry_the_verdict_and_decision_id(run):
    blocked = _lineage(run, "check_conn_blocked", "FAIL")["run"]["facets"]["dfft"]
    x = run["xcoms"]["check_conn_blocked"]
    assert blocked["verdict"] == "blocked" and blocked["proceed"] is False and blocked["reason"] == "blocked"
    assert blocked["decisionId"] == x["decision_id"]
    assert "JP-embargo" in blocked["transfers"][0]["rules"] and blocked["transfers"][0]["destination"] == "KP"
    assert blocked["_schemaURL"].endswith("/docs/openlineage/DfftDecisionRunFacet.json")
    import jsonschema

    schema = json.loads((HERE.parents[1] / "docs" / "openlineage" / "DfftDecisionRunFacet.json").read_text())
    jsonschema.validate(blocked, schema["$defs"]["DfftDecisionRunFacet"]["allOf"][1])  # the facet's own fields
    allowed = _lineage(run, "ship_via_conn", "COMPLETE")["run"]["facets"]["dfft"]
    assert allowed["verdict"] == "allowed" and allowed["proceed"] is True and allowed["decisionId"]
    down = _lineage(run, "check_api_down", "FAIL")["run"]["facets"]["dfft"]
    assert "verdict" not in down and down["reason"] == "unavailable" and down["proceed"] is False
    in_process = _lineage(run, "ship_allowed", "COMPLETE")["run"]["facets"]["dfft"]
    assert in_process["verdict"] == "allowed" and "decisionId" not in in_process  # OpenLineage leaves out nulls
    assert in_process["transfers"][0]["mode"] == "in-process"


def test_lineage_derived_transfer_reaches_openlineage(run):
    facet = _lineage(run, "copy_designs", "FAIL")["run"]["facets"]["dfft"]
    (t,) = facet["transfers"]
    assert (t["origin"], t["destination"], t["dataCategories"]) == ("JP", "KP", ["controlled_technology"])
    assert facet["verdict"] == "blocked" and t["mode"] == "in-process" and "decisionId" not in t


def test_provider_is_registered_with_airflow(airflow_env):
    code = (
        "from airflow.providers_manager import ProvidersManager as P; m = P(); "
        "print('dfft' in m.providers, 'dfft_transfer_check' in m.taskflow_decorators, "
        "'transfer_check' in m.taskflow_decorators, 'dfft' in m.hooks, "
        "getattr(m.hooks.get('dfft'), 'hook_class_name', None))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=airflow_env, capture_output=True, text=True, timeout=300)
    assert out.stdout.split()[-5:] == ["True", "True", "True", "True", "dfft.plugins.airflow.hooks.DfftHook"], (
        out.stdout + out.stderr
    )


def test_provider_info_validates_against_airflows_schema():
    import importlib.resources

    import jsonschema

    from dfft.plugins.airflow import get_provider_info

    schema = json.loads((importlib.resources.files("airflow") / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)
