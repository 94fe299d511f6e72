"""The XCom key under which the operator and the decorator push their decision (plain Python: no Airflow import)."""

XCOM_KEY = "dfft_decision"
