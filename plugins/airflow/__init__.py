"""dfft provider for Apache Airflow 3: judge a task's cross-border transfer before it ships data.

    pip install 'dfft[airflow]'

    from dfft.plugins.airflow import TransferCheckOperator, transfer_check

Importing this package does not import Airflow (so `get_provider_info`, the provider entry point, and the region
map stay usable without it); the operator and decorator load Airflow on first access.
"""

from __future__ import annotations

from typing import Any

from .xcom import XCOM_KEY

__all__ = ["TransferCheckOperator", "transfer_check", "get_provider_info", "RegionMap", "XCOM_KEY"]


def get_provider_info() -> dict[str, Any]:
    """Provider metadata, read by Airflow through the `apache_airflow_provider` entry point."""
    try:
        from importlib.metadata import version

        versions = [version("dfft")]
    except Exception:
        versions = []
    return {
        "package-name": "dfft",
        "name": "dfft",
        "description": "Cross-border data-transfer checks (allowed / conditional / blocked, with citations) for "
        "Airflow tasks: TransferCheckOperator and @task.transfer_check.",
        "versions": versions,
        "integrations": [{"integration-name": "dfft", "external-doc-url": "https://github.com/", "tags": ["software"]}],
        "operators": [{"integration-name": "dfft", "python-modules": ["dfft.plugins.airflow.operators"]}],
        "task-decorators": [{"name": "transfer_check", "class-name": "dfft.plugins.airflow.decorators.transfer_check"}],
    }


def __getattr__(name: str) -> Any:
    if name == "TransferCheckOperator":
        from .operators import TransferCheckOperator

        return TransferCheckOperator
    if name == "transfer_check":
        from .decorators import transfer_check

        return transfer_check
    if name == "RegionMap":
        from .regions import RegionMap

        return RegionMap
    raise AttributeError(f"module 'dfft.plugins.airflow' has no attribute {name!r}")
