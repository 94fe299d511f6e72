"""Integrations that stop a pipeline before it ships data where the law forbids: `guard` (plain Python: any job,
Dagster, Prefect, Ray, cron) and `airflow` (the Apache Airflow provider, built on the guard). Importing this package
imports neither Airflow nor any other orchestrator."""

# Where the integrations are documented (docs/integrations.md in the repository); also the package's
# Documentation URL (pyproject.toml [project.urls]), the Airflow provider's external-doc-url and the Prefect block's.
DOCS_URL = "https://github.com/dfft-dev/dfft/blob/main/docs/integrations.md"
