"""Integrations that stop a pipeline before it ships data where the law forbids: `guard` (plain Python: any job,
Dagster, Prefect, Ray, cron) and `airflow` (the Apache Airflow provider, built on the guard). Importing this package
imports neither Airflow nor any other orchestrator."""
