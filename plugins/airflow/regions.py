"""Map datasets (Airflow assets, OpenLineage datasets, plain URIs) to jurisdictions and data categories.

A small YAML file says where each storage namespace lives and, optionally, what data it holds:

    # dfft-regions.yaml
    regions:                              # URI or OpenLineage-namespace prefix -> jurisdiction code
      s3://acme-tokyo: JP
      s3://acme-hanoi: VN
      postgres://crm.sg.internal:5432: SG
    categories:                           # optional: prefix -> data categories held there
      s3://acme-tokyo/customers: [personal]
      s3://acme-tokyo/designs: [controlled_technology]

The longest matching prefix wins (prefixes match at a path boundary: "s3://acme" does not match "s3://acme-tokyo").
An asset can also say it itself, in its `extra`: `Asset("s3://x/y", extra={"dfft": {"region": "JP",
"data_categories": ["personal"]}})`; that takes precedence over the file. No Airflow import here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

ENV_REGION_MAP = "DFFT_REGION_MAP"


class RegionMapError(ValueError):
    """A dataset that cannot be placed, or a malformed region map: the transfer cannot be judged."""


def dataset_uri(obj: Any) -> str:
    """The URI of an Airflow Asset / Dataset, an OpenLineage Dataset (namespace + name), or a string."""
    if isinstance(obj, str):
        return obj
    uri = getattr(obj, "uri", None)
    if isinstance(uri, str) and uri:
        return uri
    ns, name = getattr(obj, "namespace", None), getattr(obj, "name", None)
    if isinstance(ns, str) and ns:
        return ns.rstrip("/") + ("/" + str(name).lstrip("/") if name else "")
    raise RegionMapError(
        f"cannot tell the location of {obj!r}: expected an Asset (uri), an OpenLineage dataset "
        f"(namespace, name) or a URI string"
    )


def _extra(obj: Any) -> dict[str, Any]:
    extra = getattr(obj, "extra", None) or getattr(obj, "facets", None)
    if isinstance(extra, dict) and isinstance(extra.get("dfft"), dict):
        return extra["dfft"]
    return {}


def _matches(prefix: str, uri: str) -> bool:
    if uri == prefix:
        return True
    if not uri.startswith(prefix):
        return False
    return prefix.endswith(("/", ":")) or uri[len(prefix)] in "/:?#"


@dataclass(frozen=True)
class RegionMap:
    regions: dict[str, str] = field(default_factory=dict)
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Union[str, Path]) -> RegionMap:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise RegionMapError(f"cannot read region map {p}: {e}") from e
        return cls.from_dict(data, source=str(p))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "region map") -> RegionMap:
        if not isinstance(data, dict) or not isinstance(data.get("regions", {}), dict):
            raise RegionMapError(f"{source}: expected a mapping with 'regions' (prefix -> code)")
        unknown = set(data) - {"regions", "categories"}
        if unknown:
            raise RegionMapError(f"{source}: unknown key(s) {sorted(unknown)}; expected regions, categories")
        regions = {str(k): str(v).strip().upper() for k, v in (data.get("regions") or {}).items()}
        cats: dict[str, tuple[str, ...]] = {}
        for k, v in (data.get("categories") or {}).items():
            vals = [v] if isinstance(v, str) else v
            if not isinstance(vals, list) or not all(isinstance(x, str) for x in vals):
                raise RegionMapError(f"{source}: categories[{k!r}] must be a list of category names")
            cats[str(k)] = tuple(vals)
        return cls(regions, cats)

    @classmethod
    def resolve(cls, value: Union[RegionMap, dict, str, Path, None]) -> RegionMap:
        """A RegionMap from an instance, a dict, a path, or (None) the DFFT_REGION_MAP environment variable."""
        if isinstance(value, RegionMap):
            return value
        if isinstance(value, dict):
            return cls.from_dict(value)
        path = value if value is not None else os.environ.get(ENV_REGION_MAP)
        return cls.load(path) if path else cls()

    @staticmethod
    def _longest(table: dict[str, Any], uri: str) -> Optional[Any]:
        hits = [k for k in table if _matches(k, uri)]
        return table[max(hits, key=len)] if hits else None

    def region_of(self, obj: Any) -> str:
        ex = _extra(obj)
        if ex.get("region"):
            return str(ex["region"]).strip().upper()
        uri = dataset_uri(obj)
        code = self._longest(self.regions, uri)
        if code is None:
            known = ", ".join(sorted(self.regions)) or "none configured"
            raise RegionMapError(
                f"no region for dataset {uri!r}: add its prefix to the region map "
                f"(known prefixes: {known}) or set extra={{'dfft': {{'region': ...}}}} on the asset"
            )
        return code

    def categories_of(self, obj: Any) -> tuple[str, ...]:
        ex = _extra(obj)
        if ex.get("data_categories"):
            v = ex["data_categories"]
            return (v,) if isinstance(v, str) else tuple(v)
        return tuple(self._longest(self.categories, dataset_uri(obj)) or ())


@dataclass(frozen=True)
class Transfer:
    origin: str
    destination: str
    data_categories: tuple[str, ...]
    sources: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()


def transfers_from_lineage(
    inlets: Iterable[Any],
    outlets: Iterable[Any],
    region_map: RegionMap,
    data_categories: Optional[Iterable[str]] = None,
) -> list[Transfer]:
    """The cross-border transfers implied by reading `inlets` and writing `outlets`: one per (origin region,
    destination region) pair that differ. Categories: the explicit ones, else those of the inlets read from that
    region (asset extra or the map's `categories`)."""
    ins, outs = list(inlets or ()), list(outlets or ())
    if not ins or not outs:
        raise RegionMapError(
            "cannot derive the transfer: the task needs both inlets (sources) and outlets "
            "(targets), or an explicit origin and destination"
        )
    by_origin: dict[str, list[Any]] = {}
    for i in ins:
        by_origin.setdefault(region_map.region_of(i), []).append(i)
    by_dest: dict[str, list[Any]] = {}
    for o in outs:
        by_dest.setdefault(region_map.region_of(o), []).append(o)
    explicit = tuple(data_categories) if data_categories else None
    out: list[Transfer] = []
    for origin in sorted(by_origin):
        cats = explicit or tuple(sorted({c for i in by_origin[origin] for c in region_map.categories_of(i)}))
        if not cats:
            srcs = ", ".join(dataset_uri(i) for i in by_origin[origin])
            raise RegionMapError(
                f"no data categories for {srcs}: pass data_categories=... or declare them in the "
                f"region map's 'categories' or the asset's extra"
            )
        for dest in sorted(by_dest):
            if dest == origin:
                continue
            out.append(
                Transfer(
                    origin,
                    dest,
                    cats,
                    tuple(dataset_uri(i) for i in by_origin[origin]),
                    tuple(dataset_uri(o) for o in by_dest[dest]),
                )
            )
    return out
