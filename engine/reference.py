"""The reference interpreter: a direct, slow, obviously-correct reading of the rules in Python.

It shares the request normalisation, facts and decision assembly with the durable-rules backend, so the
compiler-fidelity property compares only the matching of conditions.
"""

from __future__ import annotations

from ..rules.model import RuleSet
from .plan import Fact, Prepared, Unit, holds, prepare


class ReferenceBackend:
    name = "reference"

    def __init__(self, rs: RuleSet):
        self.rs = rs
        self.prepared = {code: prepare(j) for code, j in rs.jurisdictions.items()}

    def begin(self) -> None:
        pass

    def end(self) -> None:
        pass

    def match(self, fact: Fact, level: int, flags: frozenset[str]) -> list[Unit]:
        prep: Prepared = self.prepared[fact.jurisdiction]
        return [
            u
            for u in prep.units
            if u.level == level
            and u.rule.scope in fact.roles
            and u.rule.in_force(fact.as_of)
            and holds(u.cond, fact.env, flags, self.rs, fact.jurisdiction, fact.as_of)
        ]
