"""What-if analyses for privacy officers: scenarios, diffs, destination matrices, timelines, remedies, reports."""

from .context import Engines, InventoryError, load_requests
from .diff import DiffResult, diff
from .matrix import Matrix, all_destinations, load_profiles, matrix
from .remedy import RemedyResult, remedy
from .scenario import Scenario, ScenarioError, law_delta, load_scenario, parse_scenario
from .timeline import Timeline, change_dates, timeline

__all__ = [
    "DiffResult",
    "Engines",
    "InventoryError",
    "Matrix",
    "RemedyResult",
    "Scenario",
    "ScenarioError",
    "Timeline",
    "all_destinations",
    "change_dates",
    "diff",
    "law_delta",
    "load_profiles",
    "load_requests",
    "load_scenario",
    "matrix",
    "parse_scenario",
    "remedy",
    "timeline",
]
