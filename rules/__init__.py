"""The dfft rule language: schema (cerberus), models (pydantic) and the loader."""

from .loader import Problem, RuleSetError, default_rules_dir, load_ruleset, load_vocabulary
from .model import Rule, RuleSet

__all__ = ["Problem", "Rule", "RuleSet", "RuleSetError", "default_rules_dir", "load_ruleset", "load_vocabulary"]
