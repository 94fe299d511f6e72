"""Matrix, timeline, remedy, report, CLI and API on the fixture bundle."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dfft.whatif import (
    all_destinations,
    change_dates,
    load_profiles,
    load_scenario,
    matrix,
    parse_scenario,
    remedy,
    timeline,
)
from dfft.whatif.matrix import Matrix
from dfft.whatif.report import render_report

from ..conftest import MINI
from .conftest import DAY, EXAMPLES

DFFT = [sys.executable, "-m", "dfft.cli", "--rules", str(MINI)]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def run(*args):
    return subprocess.run([*DFFT, *args], capture_output=True, text=True, timeout=120)


def test_full_matrix_has_every_cell(engines):
    sc = load_scenario(EXAMPLES / "asean-mcc.yaml", engines.baseline)
    m = matrix(engines, sc=sc)
    dests = all_destinations(engines.baseline)
    assert dests == ["EU", "GB", "JP", "SG", "VN"]
    assert len(m.profiles) == 5
    assert len(m.cells) == len(m.origins) * 5 * (len(dests) - 1)
    c = m.cell("JP", "personal", "SG")
    assert (c.verdict, c.scenario_verdict) == ("conditional", "allowed")
    assert m.cell("JP", "personal", "EU").verdict == "allowed"  # JP's equivalent list
    assert m.checks == 2 * len(m.cells)


def test_profiles_file_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown profile"):
        load_profiles(None, ["nope"])
    (tmp_path / "p.yaml").write_text("profiles: [1, 2]\n")
    with pytest.raises(ValueError, match="p.yaml: expected"):
        load_profiles(tmp_path / "p.yaml")


def test_timeline_evaluates_only_change_dates(engines):
    days = change_dates(engines.baseline, date(2010, 1, 1), date(2030, 12, 31))
    assert date(2026, 1, 1) in days and date(2017, 5, 30) in days and len(days) < 10
    t = timeline(
        engines,
        {"origin": "VN", "destination": "JP", "data_categories": ["personal"], "subjects": 500},
        date(2024, 1, 1),
        date(2030, 12, 31),
    )
    assert [(s.start, s.verdict) for s in t.segments] == [
        (date(2024, 1, 1), "allowed"),
        (date(2026, 1, 1), "conditional"),
    ]
    assert t.segments[0].end == date(2026, 1, 1)
    assert [(c.rule_id, c.change) for c in t.segments[1].changes] == [("VN-tia", "starts to apply")]
    sc = parse_scenario(
        {"name": "later", "law": {"law_dates": [{"law": "VN.PDPL", "effective_from": "2027-07-01"}]}}, engines.baseline
    )
    t = timeline(
        engines,
        {"origin": "VN", "destination": "JP", "data_categories": ["personal"], "subjects": 500},
        date(2024, 1, 1),
        date(2030, 12, 31),
        sc,
    )
    assert [s.start for s in t.scenario_segments] == [date(2024, 1, 1), date(2027, 7, 1)]


def test_remedy_minimal_sets(engines):
    r = remedy(
        engines,
        {
            "origin": "JP",
            "via": ["SG"],
            "destination": "VN",
            "subjects": 10,
            "data_categories": ["personal", "controlled_technology"],
            "as_of": "2026-06-01",
        },
    )
    assert r.verdict == "conditional"
    sets = {x.safeguards for x in r.remedies}
    assert sets == {("asean_mcc", "export_licence"), ("bcr", "export_licence"), ("consent", "export_licence")}
    bcr = next(x for x in r.remedies if x.safeguards == ("bcr", "export_licence"))
    assert [o.id for o in bcr.obligations] == ["JP-ob-monitor"] and "JP-tech-licence" in bcr.cures


def test_remedy_of_a_block(engines):
    r = remedy(
        engines,
        {"origin": "JP", "destination": "KP", "data_categories": ["controlled_technology"], "as_of": "2026-06-01"},
    )
    assert r.verdict == "blocked" and [b.rule_id for b in r.blockers] == ["JP-embargo"]
    assert r.remedies == () and "no safeguard cures" in r.note
    r = remedy(
        engines, {"origin": "JP", "destination": "SG", "data_categories": ["personal"], "safeguards": ["consent"]}
    )
    assert r.verdict == "allowed" and r.remedies == ()


def _report(engines) -> tuple[str, Matrix]:
    sc = load_scenario(EXAMPLES / "asean-mcc.yaml", engines.baseline)
    from dfft.whatif import diff, load_requests

    d = diff(engines, load_requests(EXAMPLES / "inventory.csv"), sc)
    m = matrix(engines, origins=["JP", "SG"], sc=sc)
    t = timeline(
        engines,
        {"origin": "VN", "destination": "JP", "data_categories": ["personal"]},
        date(2024, 1, 1),
        date(2030, 1, 1),
    )
    r = remedy(engines, {"origin": "JP", "destination": "VN", "data_categories": ["personal"], "as_of": DAY})
    return render_report(
        "Test report", scenario=sc, diff=d, matrix=m, timeline=t, remedy=r, ruleset=engines.engine().ref
    ), m


def test_report_is_self_contained(engines):
    html, m = _report(engines)
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert 'href="https://example.org/l1#3"' in html  # a finding linked to its citation URL
    assert html.count('class="cell') == len(m.origins) * len(m.profiles) * len(m.destinations)


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not installed (Debian: apt-get install -y chromium); the headless render test needs it",
)
def test_report_renders_in_headless_chromium(engines, tmp_path):
    html, m = _report(engines)
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=90)
    assert dom.returncode == 0, dom.stderr[-2000:]
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.cells: list[dict] = []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "g" and "cell" in (a.get("class") or "").split():
                self.cells.append(a)

    p = Cells()
    p.feed(dom.stdout)
    for o in m.origins:
        for prof in m.profiles:
            got = sorted(c["data-dest"] for c in p.cells if c["data-origin"] == o and c["data-profile"] == prof.name)
            assert got == sorted(m.destinations), (o, prof.name)
    shot = tmp_path / "shot.png"
    res = subprocess.run(
        [CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert res.returncode == 0 and shot.stat().st_size > 10_000, res.stderr[-2000:]


def test_cli_commands(tmp_path):
    r = run(
        "whatif",
        str(EXAMPLES / "asean-mcc.yaml"),
        "-r",
        str(EXAMPLES / "inventory.csv"),
        "--report",
        str(tmp_path / "w.html"),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"]["verdict_changed"] == 2 and (tmp_path / "w.html").exists()
    r = run("matrix", "--from", "JP", "--profile", "personal,sensitive", "--report", str(tmp_path / "m.html"))
    assert r.returncode == 0, r.stderr
    assert "\nfrom  JP\n" in r.stdout and "\nSG    CC\n" in r.stdout and "checks for 8 cells" in r.stderr
    r = run("timeline", "--from", "VN", "--to", "JP", "--data", "personal", "--start", "2025-01-01", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["segments"][1]["start"] == "2026-01-01"
    r = run("remedy", "--from", "SG", "--to", "VN", "--data", "personal", "--json")
    assert r.returncode == 0 and len(json.loads(r.stdout)["remedies"]) == 4


@pytest.mark.parametrize(
    "args, msg",
    [
        (
            ["whatif", str(EXAMPLES / "eu-adequacy-indonesia.yaml"), "-r", str(EXAMPLES / "inventory.csv")],
            "unknown list 'EU.adequacy'",
        ),
        (["whatif", str(EXAMPLES / "asean-mcc.yaml"), "-r", "nope.csv"], "cannot be read"),
        (["matrix", "--from", "XX"], "no rule set for ['XX']"),
        (["matrix", "--profile", "nope"], "unknown profile"),
        (["timeline", "--from", "JP", "--to", "VN", "--data", "personel"], "'personel' is not a data category"),
    ],
)
def test_cli_errors_exit_3(args, msg):
    r = run(*args)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert msg in " ".join(r.stderr.split()), r.stderr


def test_api_router(mini_rs):
    from dfft.api.whatif import create_router

    app = FastAPI()
    app.include_router(create_router(mini_rs))
    c = TestClient(app)
    sc = {"name": "mcc", "facts": [{"where": {"destination": "ASEAN"}, "add_safeguards": ["asean_mcc"]}]}
    reqs = [{"id": "a", "origin": "SG", "destination": "VN", "data_categories": ["personal"], "as_of": "2026-06-01"}]
    r = c.post("/v1/whatif/diff", json={"scenario": sc, "requests": reqs})
    assert r.status_code == 200 and r.json()["items"][0]["scenario"] == "allowed"
    r = c.post(
        "/v1/whatif/diff", json={"scenario": {"name": "x", "law": {"disable_rules": ["nope"]}}, "requests": reqs}
    )
    assert r.status_code == 422 and "unknown rule 'nope'" in r.json()["detail"]
    r = c.post(
        "/v1/whatif/matrix", json={"origins": ["SG"], "profiles": ["personal"], "scenario": sc, "as_of": "2026-06-01"}
    )
    assert r.status_code == 200 and len(r.json()["cells"]) == 4
    r = c.post(
        "/v1/whatif/timeline",
        json={
            "request": {"origin": "VN", "destination": "JP", "data_categories": ["personal"]},
            "start": "2025-01-01",
            "end": "2027-01-01",
        },
    )
    assert r.status_code == 200 and len(r.json()["segments"]) == 2
    r = c.post(
        "/v1/whatif/remedy", json={"request": {"origin": "SG", "destination": "VN", "data_categories": ["personal"]}}
    )
    assert r.status_code == 200 and r.json()["verdict"] == "conditional"
    r = c.post(
        "/v1/whatif/remedy", json={"request": {"origin": "XX", "destination": "VN", "data_categories": ["personal"]}}
    )
    assert r.status_code == 422
    r = c.post("/v1/whatif/report", json={"scenario": sc, "requests": reqs})
    assert r.status_code == 200 and r.text.startswith("<!DOCTYPE html>")
