"""`@dfft_transfer_check(...)`: a TaskFlow task whose transfer is judged before its body runs.

    from dfft.plugins.airflow import dfft_transfer_check

    @dfft_transfer_check(origin="JP", destination="VN", data_categories=["personal"], dfft_conn_id="dfft_default")
    def export_customers():
        ...

Also registered through the provider entry point as `@task.dfft_transfer_check(...)`. `transfer_check` /
`@task.transfer_check` are the deprecated names (they warn). With no origin/destination, the transfer is derived from
the task's own inlets/outlets and the region map:

    @dfft_transfer_check(inlets=[Asset("s3://acme-tokyo/customers")], outlets=[Asset("s3://acme-hanoi/crm")],
                    region_map="dfft-regions.yaml")
    def copy(): ...
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Optional

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk.bases.decorator import DecoratedOperator, task_decorator_factory

from .operators import _OPTION_FIELDS, _SPEC_FIELDS, DfftTransferCheckMixin, deprecation_warning_class


class _DfftTransferCheckDecoratedOperator(DfftTransferCheckMixin, DecoratedOperator, PythonOperator):
    custom_operator_name = "@task.dfft_transfer_check"
    template_fields: Sequence[str] = (*PythonOperator.template_fields, *DfftTransferCheckMixin.dfft_template_fields)
    template_fields_renderers = {"templates_dict": "json", "op_args": "py", "op_kwargs": "py"}

    def __init__(self, *, python_callable: Callable, op_args: Any, op_kwargs: Any, **kwargs: Any) -> None:
        dfft_kwargs = {k: kwargs.pop(k) for k in (*_SPEC_FIELDS, *_OPTION_FIELDS) if k in kwargs}
        super().__init__(
            kwargs_to_upstream={"python_callable": python_callable, "op_args": op_args, "op_kwargs": op_kwargs},
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            **kwargs,
        )
        self._init_transfer(**dfft_kwargs)

    def execute(self, context: Any) -> Any:
        self.run_transfer_check(context)  # raises before the body runs when the transfer may not go ahead
        return super().execute(context)


def dfft_transfer_check(
    python_callable: Optional[Callable] = None, multiple_outputs: Optional[bool] = None, **kwargs: Any
) -> Any:
    """Wrap a function into an Airflow task that first judges its transfer (same options as DfftTransferCheckOperator:
    origin, destination, data_categories, subjects, safeguards, via, exporter, sector, purpose, as_of,
    on_conditional, on_unavailable, api_url, api_key, dfft_conn_id, rules_dir, timeout, audit, region_map), plus any
    task argument (task_id, retries, inlets, outlets, ...)."""
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=_DfftTransferCheckDecoratedOperator,
        **kwargs,
    )


def transfer_check(
    python_callable: Optional[Callable] = None, multiple_outputs: Optional[bool] = None, **kwargs: Any
) -> Any:
    """Deprecated: use dfft_transfer_check (same arguments)."""
    warnings.warn(
        "transfer_check is deprecated; use dfft.plugins.airflow.dfft_transfer_check (@task.dfft_transfer_check)",
        deprecation_warning_class(),
        stacklevel=2,
    )
    return dfft_transfer_check(python_callable, multiple_outputs, **kwargs)
