"""dfft provider for Apache Airflow 3: judge a task's cross-border transfer before it ships data.

    pip install 'dfft[airflow]'

    from dfft.plugins.airflow import DfftHook, DfftTransferCheckOperator, dfft_transfer_check

Importing this package does not import Airflow (so `get_provider_info`, the provider entry point, and the region
map stay usable without it); the hook, operator and decorator load Airflow on first access. `TransferCheckOperator`
and `transfer_check` are the deprecated names of the operator and the decorator.
"""

from __future__ import annotations

from typing import Any

from .. import DOCS_URL
from .xcom import XCOM_KEY

__all__ = [
    "DfftHook",
    "DfftTransferCheckOperator",
    "dfft_transfer_check",
    "get_provider_info",
    "RegionMap",
    "XCOM_KEY",
    "TransferCheckOperator",
    "transfer_check",
]

_LAZY = {
    "DfftHook": ".hooks",
    "DfftTransferCheckOperator": ".operators",
    "TransferCheckOperator": ".operators",
    "dfft_transfer_check": ".decorators",
    "transfer_check": ".decorators",
    "RegionMap": ".regions",
    "DfftDecisionRunFacet": ".lineage",
}


def get_provider_info() -> dict[str, Any]:
    """Provider metadata, read by Airflow through the `apache_airflow_provider` entry point (it validates against
    Airflow's provider_info.schema.json; tests/airflow checks that)."""
    try:
        from importlib.metadata import version

        versions = [version("dfft")]
    except Exception:
        versions = []
    return {
        "package-name": "dfft",
        "name": "dfft",
        "description": "Cross-border data-transfer checks (allowed / conditional / blocked, with citations) for "
        "Airflow tasks: DfftTransferCheckOperator, @task.dfft_transfer_check, DfftHook and the dfft connection type.",
        "versions": versions,
        "integrations": [
            {"integration-name": "dfft", "external-doc-url": DOCS_URL + "#apache-airflow", "tags": ["software"]}
        ],
        "operators": [{"integration-name": "dfft", "python-modules": ["dfft.plugins.airflow.operators"]}],
        "hooks": [{"integration-name": "dfft", "python-modules": ["dfft.plugins.airflow.hooks"]}],
        "connection-types": [
            {"connection-type": "dfft", "hook-class-name": "dfft.plugins.airflow.hooks.DfftHook", "hook-name": "dfft"}
        ],
        "task-decorators": [
            {"name": "dfft_transfer_check", "class-name": "dfft.plugins.airflow.decorators.dfft_transfer_check"},
            {"name": "transfer_check", "class-name": "dfft.plugins.airflow.decorators.transfer_check"},
        ],
    }


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'dfft.plugins.airflow' has no attribute {name!r}")
