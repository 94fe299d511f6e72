"""A DAG that ships data only where the law allows it; tests/airflow runs it with dag.test().

Judged in-process on the fixture bundle tests/fixtures/mini (the embedded corpus is nearly empty on this branch),
except the API tasks, which talk to DFFT_TEST_API_URL (a real dfft API) and DFFT_TEST_DOWN_URL (a closed port), or
to the API through the Airflow connection `dfft_test` (AIRFLOW_CONN_DFFT_TEST, type dfft). Most tasks use the Dfft
names; a few keep the deprecated TransferCheckOperator / transfer_check, which must still work.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Asset, task

from dfft.plugins.airflow import DfftTransferCheckOperator, TransferCheckOperator, dfft_transfer_check, transfer_check
from dfft.plugins.guard import JsonlAuditSink

HERE = Path(__file__).resolve().parent
RULES = os.environ.get("DFFT_TEST_RULES_DIR", str(HERE.parents[1] / "fixtures" / "mini"))
REGIONS = str(HERE / "dfft-regions.yaml")
SHIPPED = os.environ.get("DFFT_TEST_SHIPPED_FILE", "/tmp/dfft-shipped.txt")
AUDIT = JsonlAuditSink(os.environ.get("DFFT_TEST_AUDIT_FILE", "/tmp/dfft-audit.jsonl"))
API = os.environ.get("DFFT_TEST_API_URL", "http://127.0.0.1:8000")
DOWN = os.environ.get("DFFT_TEST_DOWN_URL", "http://127.0.0.1:9")
ALLOWED_KW = dict(
    origin="JP", destination="VN", data_categories=["personal"], safeguards=["consent"], as_of="2025-01-01"
)


def _ship(name: str) -> str:
    with open(SHIPPED, "a", encoding="utf-8") as f:
        f.write(name + "\n")
    return name


with DAG(
    "dfft_guarded", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, default_args={"retries": 0}
) as dag:
    # allowed: JP -> VN personal data with consent, as of 2025-01-01
    @dfft_transfer_check(
        origin="JP",
        destination="VN",
        data_categories=["personal"],
        safeguards=["consent"],
        as_of="2025-01-01",
        rules_dir=RULES,
        audit=AUDIT,
    )
    def ship_allowed():
        return _ship("allowed")

    # blocked: VN core data may not leave VN (the deprecated decorator name)
    @transfer_check(
        origin="VN", destination="SG", data_categories=["core_data"], as_of="2026-06-01", rules_dir=RULES, audit=AUDIT
    )
    def ship_blocked():
        return _ship("blocked")

    # conditional (JP -> VN personal, no consent, as of 2026-06-01): fails or warns by setting
    check_conditional_fail = TransferCheckOperator(
        task_id="check_conditional_fail",
        origin="JP",
        destination="VN",
        data_categories=["personal"],
        as_of="2026-06-01",
        on_conditional="fail",
        rules_dir=RULES,
        audit=AUDIT,
    )
    check_conditional_warn = DfftTransferCheckOperator(
        task_id="check_conditional_warn",
        origin="JP",
        destination="VN",
        data_categories=["personal"],
        as_of="2026-06-01",
        on_conditional="warn",
        rules_dir=RULES,
        audit=AUDIT,
    )

    @task
    def ship_after_fail():
        return _ship("after_fail")

    @task
    def ship_after_warn():
        return _ship("after_warn")

    # derived from lineage: the task's own inlets/outlets, placed by the region map (JP designs -> KP: embargo)
    @dfft_transfer_check(
        inlets=[Asset("s3://acme-tokyo/designs/engine.step")],
        outlets=[Asset("s3://acme-pyongyang/drop/engine.step")],
        region_map=REGIONS,
        as_of="2026-06-01",
        rules_dir=RULES,
    )
    def copy_designs():
        return _ship("designs")

    # derived from another task's lineage: the check reads copy_customers' inlets/outlets (JP -> VN personal)
    @task(
        inlets=[Asset("s3://acme-tokyo/customers/2026.parquet")],
        outlets=[Asset("s3://acme-hanoi/crm/customers.parquet")],
    )
    def copy_customers():
        return _ship("customers")

    check_customers = DfftTransferCheckOperator(
        task_id="check_customers",
        lineage_of="copy_customers",
        region_map=REGIONS,
        safeguards=["consent"],
        as_of="2025-01-01",
        rules_dir=RULES,
    )

    # API mode: a real dfft API, and one that is down (fail closed / proceed by setting)
    check_api_blocked = DfftTransferCheckOperator(
        task_id="check_api_blocked",
        origin="JP",
        destination="KP",
        data_categories=["controlled_technology"],
        as_of="2026-06-01",
        api_url=API,
    )
    check_api_allowed = DfftTransferCheckOperator(
        task_id="check_api_allowed",
        origin="JP",
        destination="VN",
        data_categories=["personal"],
        safeguards=["consent"],
        as_of="2025-01-01",
        api_url=API,
    )
    check_api_down = DfftTransferCheckOperator(
        task_id="check_api_down",
        origin="JP",
        destination="VN",
        data_categories=["personal"],
        safeguards=["consent"],
        as_of="2025-01-01",
        api_url=DOWN,
        timeout=5,
    )
    check_api_down_allow = DfftTransferCheckOperator(
        task_id="check_api_down_allow",
        origin="JP",
        destination="VN",
        data_categories=["personal"],
        safeguards=["consent"],
        as_of="2025-01-01",
        api_url=DOWN,
        timeout=5,
        on_unavailable="allow",
    )

    # through the Airflow connection `dfft_test` (URL and key from AIRFLOW_CONN_DFFT_TEST)
    check_conn_blocked = DfftTransferCheckOperator(
        task_id="check_conn_blocked",
        dfft_conn_id="dfft_test",
        origin="JP",
        destination="KP",
        data_categories=["controlled_technology"],
        as_of="2026-06-01",
    )

    @dfft_transfer_check(dfft_conn_id="dfft_test", **ALLOWED_KW)
    def ship_via_conn():
        return _ship("via_conn")

    # templated api_url / api_key / on_conditional: from params and the connection (conditional, warned per params)
    check_templated = DfftTransferCheckOperator(
        task_id="check_templated",
        api_url="{{ params.dfft_url }}",
        api_key="{{ conn.dfft_test.password }}",
        on_conditional="{{ params.policy }}",
        params={"dfft_url": API, "policy": "warn"},
        origin="JP",
        destination="VN",
        data_categories=["personal"],
        as_of="2026-06-01",
    )

    # request model v2 through `facts`: the same JP -> VN transfer as check_conditional_fail, but to a storage provider
    # that cannot access the data (not a provision under the fixture's JP-no-access), so it runs
    check_v2_facts = DfftTransferCheckOperator(
        task_id="check_v2_facts",
        origin="JP",
        destination="VN",
        data_categories=["personal"],
        as_of="2026-06-01",
        facts={"recipient": {"role": "processor", "access": "none"}, "purposes": ["cloud_storage"]},
        rules_dir=RULES,
        audit=AUDIT,
    )

    @task
    def ship_after_v2_facts():
        return _ship("after_v2_facts")

    ship_allowed()
    ship_blocked()
    check_v2_facts >> ship_after_v2_facts()
    ship_via_conn()
    check_conditional_fail >> ship_after_fail()
    check_conditional_warn >> ship_after_warn()
    copy_designs()
    check_customers >> copy_customers()
