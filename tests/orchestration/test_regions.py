"""Region map and lineage derivation (plain Python: dfft.plugins.airflow.regions does not import Airflow)."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import distribution

import pytest

from dfft.plugins.airflow import get_provider_info
from dfft.plugins.airflow.regions import RegionMap, RegionMapError, dataset_uri, transfers_from_lineage
from tests.conftest import HERE as TESTS

MAP = RegionMap.from_dict(
    {
        "regions": {
            "s3://acme-tokyo": "jp",
            "s3://acme-hanoi": "VN",
            "s3://acme": "SG",
            "postgres://crm.sg.internal:5432": "SG",
        },
        "categories": {"s3://acme-tokyo/customers": ["personal"], "s3://acme-tokyo/designs": "controlled_technology"},
    }
)


@dataclass
class FakeAsset:  # the shape of airflow.sdk.Asset that matters here
    uri: str
    extra: dict = field(default_factory=dict)


@dataclass
class FakeOLDataset:  # the shape of an OpenLineage dataset
    namespace: str
    name: str


def test_longest_prefix_at_a_boundary():
    assert MAP.region_of("s3://acme-tokyo/customers/2026.parquet") == "JP"
    assert MAP.region_of("s3://acme/x") == "SG"
    assert MAP.region_of(FakeOLDataset("postgres://crm.sg.internal:5432", "crm.public.customers")) == "SG"
    with pytest.raises(RegionMapError, match="no region for dataset 's3://other/x'"):
        MAP.region_of("s3://other/x")
    with pytest.raises(RegionMapError):
        MAP.region_of("s3://acmex/y")  # "s3://acme" must not match "s3://acmex"


def test_asset_extra_wins():
    a = FakeAsset("s3://acme-tokyo/x", extra={"dfft": {"region": "vn", "data_categories": ["health"]}})
    assert MAP.region_of(a) == "VN" and MAP.categories_of(a) == ("health",)
    assert dataset_uri(FakeOLDataset("s3://b", "k/v")) == "s3://b/k/v"


def test_transfers_from_lineage():
    ts = transfers_from_lineage(
        [FakeAsset("s3://acme-tokyo/customers/a"), FakeAsset("s3://acme-tokyo/designs/b")],
        [FakeAsset("s3://acme-hanoi/crm"), FakeAsset("s3://acme-tokyo/copy")],
        MAP,
    )
    assert [(t.origin, t.destination, t.data_categories) for t in ts] == [
        ("JP", "VN", ("controlled_technology", "personal"))
    ]
    # same region on both sides: nothing crosses a border
    assert transfers_from_lineage(["s3://acme-tokyo/customers/a"], ["s3://acme-tokyo/b"], MAP) == []
    # explicit categories override the map
    ts = transfers_from_lineage(["s3://acme-hanoi/a"], ["s3://acme/b"], MAP, ["personal"])
    assert [(t.origin, t.destination, t.data_categories) for t in ts] == [("VN", "SG", ("personal",))]


def test_lineage_errors_are_explicit():
    with pytest.raises(RegionMapError, match="inlets"):
        transfers_from_lineage([], ["s3://acme-hanoi/x"], MAP)
    with pytest.raises(RegionMapError, match="no data categories"):
        transfers_from_lineage(["s3://acme-hanoi/a"], ["s3://acme/b"], MAP)
    with pytest.raises(RegionMapError, match="unknown key"):
        RegionMap.from_dict({"region": {}})


def test_load_from_file_and_env(tmp_path, monkeypatch):
    p = tmp_path / "regions.yaml"
    p.write_text("regions:\n  s3://b: JP\ncategories:\n  s3://b/c: [personal]\n")
    assert RegionMap.load(p).region_of("s3://b/c/d") == "JP"
    monkeypatch.setenv("DFFT_REGION_MAP", str(p))
    assert RegionMap.resolve(None).categories_of("s3://b/c/d") == ("personal",)
    with pytest.raises(RegionMapError, match="cannot read"):
        RegionMap.load(tmp_path / "missing.yaml")


def test_provider_info_and_entry_point():
    info = get_provider_info()
    assert info["package-name"] == "dfft"
    decorators = {d["name"]: d["class-name"] for d in info["task-decorators"]}
    assert decorators["dfft_transfer_check"] == "dfft.plugins.airflow.decorators.dfft_transfer_check"
    assert decorators["transfer_check"] == "dfft.plugins.airflow.decorators.transfer_check"  # deprecated name kept
    assert info["connection-types"] == [
        {"connection-type": "dfft", "hook-class-name": "dfft.plugins.airflow.hooks.DfftHook", "hook-name": "dfft"}
    ]
    assert info["hooks"] == [{"integration-name": "dfft", "python-modules": ["dfft.plugins.airflow.hooks"]}]
    url = info["integrations"][0]["external-doc-url"]
    assert url.startswith("https://") and url.endswith("/docs/integrations.md#apache-airflow")
    assert (TESTS.parent / "docs" / "integrations.md").is_file() and "## Apache Airflow" in (
        TESTS.parent / "docs" / "integrations.md"
    ).read_text(encoding="utf-8")
    eps = [ep for ep in distribution("dfft").entry_points if ep.group == "apache_airflow_provider"]
    assert [ep.value for ep in eps] == ["dfft.plugins.airflow:get_provider_info"]


def test_core_requirements_do_not_pull_airflow():
    reqs = distribution("dfft").requires or []
    core = [r for r in reqs if "extra ==" not in r]
    for name in ("airflow", "dagster", "prefect", "openlineage"):
        assert not any(name in r.lower() for r in core), f"the core install pulls {name}"
    assert any("apache-airflow" in r and 'extra == "airflow"' in r for r in reqs)
    assert any("apache-airflow-providers-openlineage" in r and 'extra == "airflow"' in r for r in reqs)
    assert any(r.startswith("dagster") and 'extra == "dagster"' in r for r in reqs)
    assert any(r.startswith("prefect") and 'extra == "prefect"' in r for r in reqs)
