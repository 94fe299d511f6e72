"""Saved inventories, scenarios and analyses (the web_objects table): each with its owner and time, analyses with
the version and content hash of the rule bundle they were run on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Optional

import sqlalchemy as sa

from ..api.audit import new_id
from ..api.db import web_objects

KINDS = ("inventory", "scenario", "analysis")


class Store:
    def __init__(self, db: sa.Engine):
        self.db = db

    def save(
        self,
        kind: str,
        name: str,
        owner: str,
        body: Any,
        ruleset: Optional[tuple[str, str]] = None,
        previous: Optional[str] = None,
    ) -> str:
        assert kind in KINDS
        oid = new_id()
        with self.db.begin() as c:
            c.execute(
                web_objects.insert().values(
                    id=oid,
                    kind=kind,
                    name=name[:200],
                    owner=owner,
                    created_at=datetime.now(UTC),
                    body=body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, default=str),
                    ruleset_version=ruleset[0] if ruleset else None,
                    ruleset_hash=ruleset[1] if ruleset else None,
                    previous_id=previous,
                )
            )
        return oid

    def update_body(self, kind: str, oid: str, body: Any) -> None:
        with self.db.begin() as c:
            c.execute(
                web_objects.update()
                .where(web_objects.c.id == oid, web_objects.c.kind == kind)
                .values(body=body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, default=str))
            )

    def get(self, kind: str, oid: str) -> Optional[dict[str, Any]]:
        if not oid or len(oid) > 32:
            return None
        with self.db.connect() as c:
            r = (
                c.execute(sa.select(web_objects).where(web_objects.c.id == oid, web_objects.c.kind == kind))
                .mappings()
                .first()
            )
        return dict(r) if r else None

    def list(self, kind: str, limit: int = 500) -> list[dict[str, Any]]:
        with self.db.connect() as c:
            rows = (
                c.execute(
                    sa.select(
                        web_objects.c.id,
                        web_objects.c.name,
                        web_objects.c.owner,
                        web_objects.c.created_at,
                        web_objects.c.ruleset_version,
                        web_objects.c.ruleset_hash,
                        web_objects.c.previous_id,
                    )
                    .where(web_objects.c.kind == kind)
                    .order_by(web_objects.c.created_at.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    def delete(self, kind: str, oid: str) -> bool:
        with self.db.begin() as c:
            return bool(
                c.execute(web_objects.delete().where(web_objects.c.id == oid, web_objects.c.kind == kind)).rowcount
            )
