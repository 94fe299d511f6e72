"""End to end in a real browser: the distribution's headless Chromium driven by Playwright (never a downloaded
browser), against the workbench on a real server. A privacy officer signs in with the keyboard, uploads an
Excel-saved CSV and an XLSX, builds the ASEAN-MCC scenario with the form, sees the changed verdicts, switches to
Japanese, downloads the report; a viewer cannot edit. axe-core (from npm, installed by .ci/run into .ci/axe, never
shipped in the package) finds no serious or critical violation on any page.

Set DFFT_SCREENSHOTS=<dir> to save screenshots of the main pages (docs/screenshots/ was made that way)."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from .conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DFFT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") or ""
AXE = Path(os.environ.get("DFFT_AXE_JS") or ROOT / ".ci" / "axe" / "node_modules" / "axe-core" / "axe.min.js")
SHOTS = os.environ.get("DFFT_SCREENSHOTS")

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed: browser tests skipped"),
    pytest.mark.skipif(
        not CHROMIUM, reason="no Chromium from the distribution (apt-get install chromium): browser tests skipped"
    ),
]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], timeout=60_000)
        yield b
        b.close()


def excel_csv() -> bytes:
    """examples/inventory.csv as Excel saves "CSV UTF-8" where the list separator is `;`: BOM, `;`, CRLF."""
    rows = list(csv.reader(io.StringIO((ROOT / "examples" / "inventory.csv").read_text(encoding="utf-8"))))
    for r in rows[1:]:
        if r[5].isdigit():
            r[5] = f"{int(r[5]):,}".replace(",", ".")  # 25000 -> 25.000 (a German or French Excel)
    buf = io.StringIO()
    csv.writer(buf, delimiter=";", lineterminator="\r\n").writerows(rows)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def xlsx() -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["id", "origin", "destination", "data_categories", "subjects", "as_of"])
    ws.append(["xl-1", "SG", "MY", "personal", 12000, "2026-06-01"])
    ws.append(["xl-2", "JP", "TH", "personal;financial", 3000, "2026-06-01"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def axe_check(pg: Any, where: str) -> None:
    if not AXE.exists():
        return
    pg.evaluate(AXE.read_text(encoding="utf-8"))
    res = pg.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in res["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"axe-core on {where}: {bad}"


def shot(pg: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def sign_in_with_the_keyboard(pg: Any, url: str, user: str) -> None:
    pg.goto(url + "/ui/")
    assert "/ui/login" in pg.url
    pg.focus("#username")
    pg.keyboard.type(user)
    pg.keyboard.press("Tab")
    pg.keyboard.type(PASSWORD)
    pg.keyboard.press("Tab")  # to the button
    with pg.expect_navigation():
        pg.keyboard.press("Enter")
    assert pg.url.endswith("/ui/"), pg.url


def test_privacy_officer_end_to_end(web, browser, tmp_path):
    ctx = browser.new_context(accept_downloads=True, bypass_csp=True, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(60_000)
    pg = ctx.new_page()
    sign_in_with_the_keyboard(pg, web.url, "ana")
    axe_check(pg, "start page")

    # an Excel-saved CSV, then an XLSX
    (tmp_path / "inventory.csv").write_bytes(excel_csv())
    (tmp_path / "flows.xlsx").write_bytes(xlsx())
    pg.goto(web.url + "/ui/inventories")
    axe_check(pg, "inventories")
    pg.fill("#name", "Customer flows (Excel CSV)")
    pg.set_input_files("#file", str(tmp_path / "inventory.csv"))
    pg.click("button:has-text('Upload')")
    pg.wait_for_url(re.compile(r"/ui/inventories/\w+$"))
    assert pg.locator("tbody tr").count() == 8 and "25,000" in pg.content()
    axe_check(pg, "inventory")
    shot(pg, "inventory")
    pg.goto(web.url + "/ui/inventories")
    pg.set_input_files("#file", str(tmp_path / "flows.xlsx"))
    pg.click("button:has-text('Upload')")
    pg.wait_for_url(re.compile(r"/ui/inventories/\w+$"))
    assert pg.locator("tbody tr").count() == 2 and "Malaysia" in pg.content()

    # the ASEAN-MCC scenario, built with the drop-downs
    pg.goto(web.url + "/ui/scenarios")
    axe_check(pg, "scenario builder")
    shot(pg, "scenario-builder")
    pg.fill("#name", "ASEAN MCCs for all ASEAN destinations")
    pg.select_option("#f0_destination", "ASEAN")
    pg.select_option("#f0_add", "asean_mcc")
    pg.click("button:has-text('Save scenario')")
    pg.wait_for_url(re.compile(r"/ui/scenarios/\w+$"))
    assert "asean_mcc" in pg.inner_text("pre.yaml") and "destination: ASEAN" in pg.inner_text("pre.yaml")
    axe_check(pg, "scenario")

    # compare the inventory with it
    pg.goto(web.url + "/ui/analyses?kind=diff")
    axe_check(pg, "analyses")
    pg.select_option("#inventory", label="Customer flows (Excel CSV)")
    pg.select_option("#scenario", label="ASEAN MCCs for all ASEAN destinations")
    pg.fill("#as_of", "2026-06-01")
    pg.click("button:has-text('Run and save')")
    pg.wait_for_url(re.compile(r"/ui/analyses/\w+$"))
    analysis = pg.url
    changed = pg.locator("tr.changed")
    assert changed.count() >= 1
    first = changed.first.locator("td").nth(1).inner_text()  # the scenario's verdict differs from the baseline's
    assert changed.first.locator("td").nth(0).inner_text() != first or changed.first.locator("td").nth(2).inner_text()
    axe_check(pg, "diff result")
    shot(pg, "diff")
    pg.click("text=Show only the transfers that change")
    assert pg.locator("tr.same").count() == 0 and pg.locator("tr.changed").count() == changed.count()

    # the full matrix for one origin, with the scenario
    pg.goto(web.url + "/ui/analyses?kind=matrix")
    pg.select_option("#scenario", label="ASEAN MCCs for all ASEAN destinations")
    pg.select_option("#origins", ["SG", "JP"])
    pg.click("button:has-text('Run and save')")
    pg.wait_for_url(re.compile(r"/ui/analyses/\w+$"))
    assert pg.locator("td.cell.changed").count() >= 1
    axe_check(pg, "matrix")
    shot(pg, "matrix")

    # a single check
    pg.goto(web.url + "/ui/check")
    pg.select_option("#origin", "JP")
    pg.select_option("#destination", "VN")
    pg.check("#data_categories-personal")
    pg.check("#data_categories-health")
    pg.fill("#subjects", "50,000")
    pg.click("button:has-text('Check')")
    assert pg.locator(".result .v").count() >= 1 and pg.locator(".checklist li").count() >= 1
    axe_check(pg, "single check")
    shot(pg, "check")

    # Japanese
    pg.goto(analysis)
    pg.click("a[hreflang=ja]")
    pg.wait_for_url(analysis)
    assert pg.get_attribute("html", "lang") == "ja" and "変わる点" in pg.content()
    assert pg.locator("tr.changed").count() == changed.count()
    axe_check(pg, "diff result in Japanese")
    shot(pg, "diff-ja")

    # the report
    with pg.expect_download() as dl:
        pg.click("a[download]")
    path = tmp_path / "report.html"
    dl.value.save_as(str(path))
    report = path.read_text(encoding="utf-8")
    assert "<html" in report and "ASEAN MCCs for all ASEAN destinations" in report and "asean_mcc" in report

    # a phone
    pg.set_viewport_size({"width": 375, "height": 800})
    for path_ in ("/ui/check", analysis.split(web.url, 1)[1], "/ui/scenarios"):
        pg.goto(web.url + path_)
        assert pg.evaluate("document.documentElement.scrollWidth") <= 376, path_
    shot(pg, "phone-scenario-builder")
    ctx.close()


def test_a_viewer_cannot_edit(web, browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(60_000)
    pg = ctx.new_page()
    sign_in_with_the_keyboard(pg, web.url, "vic")
    pg.goto(web.url + "/ui/inventories")
    assert pg.locator("input[type=file]").count() == 0
    pg.goto(web.url + "/ui/scenarios")
    assert pg.locator("button:has-text('Save scenario')").count() == 0
    pg.goto(web.url + "/ui/analyses")
    assert pg.locator("button:has-text('Run and save')").count() == 0
    token = pg.get_attribute("input[name=csrf]", "value")  # the viewer's own, from the sign-out form
    r = ctx.request.post(web.url + "/ui/scenarios", form={"csrf": token, "name": "x", "f0_add": "consent"})
    assert r.status == 403 and "analyst" in r.text()
    r = pg.goto(web.url + "/ui/admin")
    assert r is not None and r.status == 403
    ctx.close()


def test_axe_finds_no_serious_violations_on_every_page(web, browser):
    if not AXE.exists():
        pytest.skip(f"axe-core not found at {AXE} (.ci/run installs it from npm): accessibility scan skipped")
    ctx = browser.new_context(bypass_csp=True)
    ctx.set_default_timeout(60_000)
    pg = ctx.new_page()
    pg.goto(web.url + "/ui/login")
    axe_check(pg, "sign-in")
    shot(pg, "login")
    sign_in_with_the_keyboard(pg, web.url, "admin")
    for path in (
        "/ui/",
        "/ui/check",
        "/ui/inventories",
        "/ui/scenarios",
        "/ui/analyses",
        "/ui/analyses?kind=matrix",
        "/ui/analyses?kind=timeline",
        "/ui/analyses?kind=remedy",
        "/ui/glossary",
        "/ui/admin",
    ):
        pg.goto(web.url + path)
        axe_check(pg, path)
    for kind in ("timeline", "remedy"):
        pg.goto(web.url + f"/ui/analyses?kind={kind}")
        pg.select_option("#origin", "VN" if kind == "timeline" else "JP")
        pg.select_option("#destination", "JP" if kind == "timeline" else "VN")
        pg.check("#data_categories-personal")
        pg.fill("#subjects", "20000")
        pg.click("button:has-text('Run and save')")
        pg.wait_for_url(re.compile(r"/ui/analyses/\w+$"))
        axe_check(pg, f"{kind} result")
        shot(pg, kind)
    pg.goto(web.url + "/ui/lang/ja?next=/ui/check")
    axe_check(pg, "single check in Japanese")
    ctx.close()
