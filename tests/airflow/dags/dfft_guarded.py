"""A DAG that ships data only where the law allows it (tests/airflow runs it with dag.test())."""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Asset, task

from dfft.airflow import TransferCheckOperator, transfer_check

RULES = os.environ.get("DFFT_TEST_RULES_DIR", str(Path(__file__).resolve().parents[2] / "fixtures" / "mini"))
ON_CONDITIONAL = os.environ.get("DFFT_TEST_ON_CONDITIONAL", "fail")
SHIPPED = os.environ.get("DFFT_TEST_SHIPPED_FILE", "/tmp/dfft-shipped.txt")


def _ship(name: str) -> str:
    with open(SHIPPED, "a", encoding="utf-8") as f:
        f.write(name + "\n")
    return name


with DAG("dfft_guarded", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         default_args={"retries": 0}) as dag:

    # allowed: JP -> VN personal data with consent, as of 2025-01-01
    @transfer_check(origin="JP", destination="VN", data_categories=["personal"], safeguards=["consent"],
                    as_of="2025-01-01", rules_dir=RULES)
    def ship_allowed():
        return _ship("allowed")

    # blocked: VN core data may not leave VN
    @transfer_check(origin="VN", destination="SG", data_categories=["core_data"], rules_dir=RULES)
    def ship_blocked():
        return _ship("blocked")

    # conditional: JP -> VN personal data without consent, as of 2026-06-01; fail or warn by setting
    check_conditional = TransferCheckOperator(task_id="check_conditional", origin="JP", destination="VN",
                                              data_categories=["personal"], as_of="2026-06-01",
                                              on_conditional=ON_CONDITIONAL, rules_dir=RULES)

    @task
    def ship_conditional():
        return _ship("conditional")

    ship_allowed()
    ship_blocked()
    check_conditional >> ship_conditional()
