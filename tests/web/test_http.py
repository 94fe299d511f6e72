"""The workbench over HTTP on a real server: sign-in, sessions and their expiry, CSRF on every form, roles, the audit
trail, uploads, the scenario builder, analyses and their re-run when the law changes."""

from __future__ import annotations

import csv as _csv
import io
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
import yaml

from dfft.api.db import decisions, web_events, web_sessions
from dfft.rules import load_ruleset
from dfft.rules.loader import write_manifest
from dfft.web import WebSettings
from dfft.web.accounts import Accounts, hash_password, verify_password
from dfft.whatif import Engines, diff, load_requests, load_scenario, parse_scenario

from .conftest import PASSWORD, csrf_of, page, post, start

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
POSTS = [
    ("/ui/check", "/ui/check"),
    ("/ui/inventories", "/ui/inventories/upload"),
    ("/ui/scenarios", "/ui/scenarios"),
    ("/ui/analyses", "/ui/analyses"),
    ("/ui/analyses", "/ui/analyses/rerun-stale"),
    ("/ui/admin", "/ui/admin/users"),
    ("/ui/", "/ui/logout"),
]


def events(web, action: str) -> list[dict]:
    with web.app.state.db.connect() as c:
        return [dict(r) for r in c.execute(sa.select(web_events).where(web_events.c.action == action)).mappings()]


def test_pages_need_a_signed_in_user(web):
    with web.client() as c:
        for path in ("/ui/", "/ui/check", "/ui/analyses", "/ui/admin"):
            r = c.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next=")
        assert c.get("/").headers["location"] == "/ui/"


def test_wrong_password_is_refused_and_recorded(web):
    with web.client() as c:
        r = c.post(
            "/ui/login", data={"csrf": csrf_of(page(c, "/ui/login")), "username": "ana", "password": "wrong password!"}
        )
        assert r.status_code == 401 and "dfft_session" not in r.headers.get("set-cookie", "")
        assert "Wrong user name or password" in r.text
    assert any(e["username"] == "ana" for e in events(web, "login-failed"))


def test_session_cookie_is_httponly_strict_and_scoped(web):
    with web.client() as c:
        r = c.post("/ui/login", data={"csrf": csrf_of(page(c, "/ui/login")), "username": "vic", "password": PASSWORD})
        assert r.status_code == 303
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("dfft_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback (auto)
    with web.client() as c:  # behind a TLS-terminating proxy on a trusted address: Secure
        r = c.post(
            "/ui/login",
            data={"csrf": csrf_of(page(c, "/ui/login")), "username": "vic", "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
        )
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("dfft_session="))
        assert "Secure" in cookie


def test_every_form_post_needs_the_csrf_token(web):
    with web.client("admin") as c:
        good = csrf_of(page(c, "/ui/check"))
        for _form_page, action in POSTS:
            for data in ({}, {"csrf": "forged"}, {"csrf": good[:-1]}):
                r = c.post(action, data={**data, "origin": "JP", "destination": "VN", "name": "x", "kind": "diff"})
                assert r.status_code == 403, (action, data, r.status_code)
                assert "CSRF" in r.text
        assert page(c, "/ui/")  # still signed in: the refused logout did not log out
    with web.client() as c:  # the sign-in form: token in a cookie and in the form
        page(c, "/ui/login")
        r = c.post("/ui/login", data={"csrf": "forged", "username": "ana", "password": PASSWORD})
        assert r.status_code == 403
    assert events(web, "csrf-refused")


def test_roles(web):
    with web.client("vic") as c:  # viewer: reads, runs single checks, changes nothing
        for path in ("/ui/", "/ui/check", "/ui/inventories", "/ui/scenarios", "/ui/analyses", "/ui/glossary"):
            page(c, path)
        assert 'action="/ui/inventories/upload"' not in page(c, "/ui/inventories")
        r = post(
            c,
            "/ui/inventories",
            "/ui/inventories/upload",
            {},
            files={"file": ("a.csv", b"origin,destination\nJP,VN\n")},
        )
        assert r.status_code == 403 and "analyst" in r.text
        assert post(c, "/ui/scenarios", "/ui/scenarios", {"name": "x"}).status_code == 403
        assert post(c, "/ui/analyses", "/ui/analyses", {"kind": "remedy"}).status_code == 403
        assert c.get("/ui/admin").status_code == 403
        assert (
            c.get("/ui/analyses/0000").status_code == 404 and c.get("/ui/inventories/x/export.csv").status_code == 404
        )
        r = post(c, "/ui/check", "/ui/check", {"origin": "JP", "destination": "VN", "data_categories": "personal"})
        assert r.status_code == 200
    with web.client("ana") as c:
        assert c.get("/ui/admin").status_code == 403
        assert (
            post(
                c, "/ui/", "/ui/admin/users", {"action": "add", "username": "x1", "password": PASSWORD, "role": "admin"}
            ).status_code
            == 403
        )
    with web.client("admin") as c:
        r = post(
            c,
            "/ui/admin",
            "/ui/admin/users",
            {"action": "add", "username": "newbie", "password": PASSWORD, "role": "viewer"},
        )
        assert r.status_code == 303
        assert "newbie" in page(c, "/ui/admin")
        r = post(
            c,
            "/ui/admin",
            "/ui/admin/users",
            {"action": "add", "username": "short", "password": "short", "role": "viewer"},
        )
        assert r.status_code == 422 and "12" in r.text
    assert events(web, "user-add")[-1]["username"] == "admin"


def test_session_expiry_and_logout(web):
    with web.client("ana") as c:
        page(c, "/ui/")
        with web.app.state.db.begin() as conn:  # the session's lifetime has passed
            conn.execute(
                web_sessions.update()
                .where(web_sessions.c.username == "ana")
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        r = c.get("/ui/")
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
    with web.client("ana") as c:
        assert post(c, "/ui/", "/ui/logout", {}).status_code == 303
        assert c.get("/ui/").status_code == 303  # the session is gone on the server, not only the cookie


def test_sessions_expire_by_the_clock(web):
    acc = Accounts(web.app.state.db, session_seconds=0.3)
    token, _ = acc.new_session("vic")
    assert acc.session(token)[0].username == "vic"
    import time

    time.sleep(0.5)
    assert acc.session(token) is None and acc.session("made-up") is None


def test_password_hashes():
    h = hash_password("a long enough password")
    assert h.startswith("scrypt$32768$8$1$") and verify_password("a long enough password", h)
    assert not verify_password("a long enough passwore", h) and not verify_password("x", "garbage")
    assert hash_password("same") != hash_password("same")  # salted


def test_single_check_is_in_the_decisions_audit_log(web):
    with web.client("ana") as c:
        r = post(
            c,
            "/ui/check",
            "/ui/check",
            {
                "origin": "JP",
                "destination": "VN",
                "data_categories": ["personal", "health"],
                "subjects": "50,000",
                "as_of": "2026-06-01",
            },
        )
        assert r.status_code == 200
        assert 'href="https://' in r.text and "Obligations" in r.text and "Vietnam" in r.text
        bad = post(c, "/ui/check", "/ui/check", {"origin": "JP", "destination": "XX", "subjects": "1,5"})
        assert bad.status_code == 422 and "whole number" in bad.text
    with web.app.state.db.connect() as conn:
        rows = conn.execute(sa.select(decisions).where(decisions.c.caller == "web:ana")).mappings().all()
    assert rows and rows[-1]["destination"] == "VN"
    assert events(web, "check")[-1]["username"] == "ana"


def test_single_check_with_parties_and_circumstances(web):
    """Request model v2 in the form: a foreign storage provider that cannot access the data is not a provision under
    the APPI (PPC Q&A 12-3), and the page says so; the same transfer to a provider that can access it is conditional."""
    base = {
        "origin": "JP",
        "destination": "US",
        "data_categories": ["personal"],
        "subjects": "5000",
        "purpose": "cloud_storage",
        "as_of": "2026-06-01",
        "recipient_role": "processor",
        "transit": ["SG"],
    }
    with web.client("ana") as c:
        form = page(c, "/ui/check")
        assert 'name="recipient_access"' in form and 'name="transit"' in form
        none = post(c, "/ui/check", "/ui/check", {**base, "recipient_access": "none"})
        assert none.status_code == 200, none.text[-2000:]
        assert "Not a transfer under" in none.text and "JP-PPC-QA-cloud-no-handling" in none.text
        assert re.search(r'<option value="SG" selected>', none.text)  # the transit choice survives the round trip
        full = post(c, "/ui/check", "/ui/check", {**base, "recipient_access": "full"})
        assert "Not a transfer under" not in full.text and "JP-APPI-28-consent" in full.text
    with web.app.state.db.connect() as conn:
        rows = conn.execute(sa.select(decisions).where(decisions.c.caller == "web:ana")).mappings().all()
    verdicts = [r["verdict"] for r in rows[-2:]]
    assert verdicts == ["allowed", "conditional"]


def test_upload_refuses_a_bad_file_with_every_problem(web):
    with web.client("ana") as c:
        r = post(
            c,
            "/ui/inventories",
            "/ui/inventories/upload",
            {},
            files={"file": ("a.csv", b"origin,destination,subjects\nJP,VN,many\nJP,SG,x\n")},
        )
        assert r.status_code == 422
        assert "line 2, subjects" in r.text and "line 3, subjects" in r.text


def asean_form() -> dict:
    return {"name": "ASEAN MCCs for all ASEAN destinations", "f0_destination": "ASEAN", "f0_add": "asean_mcc"}


def test_upload_builder_and_diff_match_the_cli(web):
    rs = load_ruleset(web.rules_dir)
    csv = EXAMPLES / "inventory.csv"
    buf = io.StringIO()  # what Excel writes for "CSV UTF-8" in a locale whose list separator is `;`
    _csv.writer(buf, delimiter=";", lineterminator="\r\n").writerows(
        _csv.reader(io.StringIO(csv.read_text(encoding="utf-8")))
    )
    excel = ("\ufeff" + buf.getvalue()).encode("utf-8")
    with web.client("ana") as c:
        r = post(
            c,
            "/ui/inventories",
            "/ui/inventories/upload",
            {"name": "example"},
            files={"file": ("inventory.csv", excel)},
        )
        assert r.status_code == 303, r.text[-2000:]
        inv = r.headers["location"].rsplit("/", 1)[1]
        r = post(c, "/ui/scenarios", "/ui/scenarios", asean_form())
        assert r.status_code == 303, r.text[-2000:]
        sid = r.headers["location"].rsplit("/", 1)[1]
        text = c.get(f"/ui/scenarios/{sid}/scenario.yaml").text
        ours, theirs = parse_scenario(yaml.safe_load(text), rs), load_scenario(EXAMPLES / "asean-mcc.yaml", rs)
        assert ours.facts == theirs.facts and ours.law == theirs.law  # the same scenario the CLI example reads
        r = post(
            c,
            "/ui/analyses",
            "/ui/analyses",
            {"kind": "diff", "inventory": inv, "scenario": sid, "as_of": "2026-06-01"},
        )
        assert r.status_code == 303, r.text[-2000:]
        html = page(c, r.headers["location"])
        only = page(c, r.headers["location"] + "?changed=1")
    with Engines(rs, today=date(2026, 6, 1)) as e:
        expected = diff(e, load_requests(csv), theirs)
    rows = re.findall(r'<tr class="(changed|same)" data-id="([^"]+)"', html)
    changed = [x.id for x in expected.items if x.changed]
    assert changed, "the ASEAN-MCC scenario changes nothing in the example inventory"
    assert [i for k, i in rows] == changed + [x.id for x in expected.items if not x.changed]  # changed rows first
    assert [i for k, i in re.findall(r'<tr class="(changed|same)" data-id="([^"]+)"', only)] == changed
    for x in expected.items:
        seg = html.split(f'data-id="{x.id}"', 1)[1].split("</tr>", 1)[0]
        assert re.findall(r'class="v v-(\w+)"', seg) == [x.baseline, x.scenario]


def test_matrix_timeline_remedy(web):
    with web.client("ana") as c:
        sid = post(c, "/ui/scenarios", "/ui/scenarios", asean_form()).headers["location"].rsplit("/", 1)[1]
        r = post(
            c,
            "/ui/analyses?kind=matrix",
            "/ui/analyses",
            {"kind": "matrix", "scenario": sid, "origins": ["SG"], "profiles": ["personal"], "as_of": "2026-06-01"},
        )
        assert r.status_code == 303, r.text[-2000:]
        m = page(c, r.headers["location"])
        assert 'class="legend"' in m and re.search(r'class="cell v-\w+ changed"', m)
        cells = re.findall(r'<td class="cell v-(\w+)( changed)?"', m)
        only = page(c, r.headers["location"] + "?changed=1")
        assert 0 < len(re.findall(r'<td class="cell v-\w+ changed"', only)) == sum(1 for _, ch in cells if ch)
        r = post(
            c,
            "/ui/analyses?kind=timeline",
            "/ui/analyses",
            {
                "kind": "timeline",
                "origin": "VN",
                "destination": "JP",
                "data_categories": "personal",
                "subjects": "20,000",
                "start": "2024-01-01",
                "end": "2028-12-31",
            },
        )
        assert r.status_code == 303, r.text[-2000:]
        t = page(c, r.headers["location"])
        assert "<svg" in t and 'class="event"' in t and 'class="today"' in t
        r = post(
            c,
            "/ui/analyses?kind=remedy",
            "/ui/analyses",
            {
                "kind": "remedy",
                "origin": "JP",
                "destination": "VN",
                "data_categories": ["personal", "health"],
                "subjects": "50000",
                "as_of": "2026-06-01",
            },
        )
        assert r.status_code == 303, r.text[-2000:]
        rm = page(c, r.headers["location"])
        assert "Options" in rm and "<ol>" in rm
        rep = c.get(r.headers["location"] + "/report.html")
        assert rep.status_code == 200 and "attachment" in rep.headers["content-disposition"] and "<html" in rep.text


def test_trusted_proxy_header_is_off_by_default(web, tmp_path):
    with web.client() as c:
        assert c.get("/ui/", headers={"X-Remote-User": "admin"}).status_code == 303
    w = start(tmp_path, WebSettings(trusted_user_header="X-Remote-User"))
    try:
        with w.client() as c:
            r = c.get("/ui/", headers={"X-Remote-User": "ana"})
            assert r.status_code == 200 and "ana (analyst)" in r.text
            assert c.get("/ui/", headers={"X-Remote-User": "nobody"}).status_code == 303
    finally:
        w.stop()
    w2 = start(tmp_path / "b", WebSettings(trusted_user_header="X-Remote-User", trusted_proxies=("10.0.0.1",)))
    try:
        with w2.client() as c:  # loopback is not a trusted proxy here: the header is ignored
            assert c.get("/ui/", headers={"X-Remote-User": "ana"}).status_code == 303
    finally:
        w2.stop()


def test_the_law_changed_rerun_shows_what_changed(fresh_web):
    w = fresh_web
    inv = (
        "id,origin,destination,data_categories,subjects,as_of\n"
        "vn-out,VN,JP,personal,300000,2026-06-01\njp-out,JP,SG,personal,100,2026-06-01\n"
    )
    with w.client("ana") as c:
        iid = (
            post(c, "/ui/inventories", "/ui/inventories/upload", {}, files={"file": ("i.csv", inv.encode())})
            .headers["location"]
            .rsplit("/", 1)[1]
        )
        sid = post(c, "/ui/scenarios", "/ui/scenarios", asean_form()).headers["location"].rsplit("/", 1)[1]
        loc = post(c, "/ui/analyses", "/ui/analyses", {"kind": "diff", "inventory": iid, "scenario": sid}).headers[
            "location"
        ]
        assert "The law changed" not in page(c, loc)
        old = load_ruleset(w.rules_dir)
        # a new bundle: Japan designates Singapore as a country with an equivalent regime (a new version)
        j = w.rules_dir / "JP" / "jurisdiction.yaml"
        text = j.read_text(encoding="utf-8")
        assert "      - {code: GB, from: 2019-01-23}\n" in text
        j.write_text(
            text.replace(
                "      - {code: GB, from: 2019-01-23}\n",
                "      - {code: GB, from: 2019-01-23}\n      - {code: SG, from: 2026-01-01}\n",
            ),
            encoding="utf-8",
        )
        b = w.rules_dir / "bundle.yaml"
        b.write_text(re.sub(r"(?m)^version: .*$", "version: 2099.1.1", b.read_text(encoding="utf-8")), encoding="utf-8")
        write_manifest(w.rules_dir)
        w.app.state.rules.reload()
        html = page(c, loc)
        assert "The law changed" in html and "2099.1.1" in html
        assert "1 saved analyses were run on another rule bundle" in page(c, "/ui/")
        r = post(c, loc, loc + "/rerun", {})
        assert r.status_code == 303
        new = page(c, r.headers["location"])
    new_rs = load_ruleset(w.rules_dir)
    req = {"origin": "JP", "destination": "SG", "data_categories": ["personal"], "subjects": 100, "as_of": "2026-06-01"}
    with Engines(old) as e1, Engines(new_rs) as e2:
        before, after = e1.judge(req).verdict, e2.judge(req).verdict
    assert before != after, "the designation of SG does not change JP -> SG"
    section = new.split('id="law-h"', 1)[1].split("</section>", 1)[0]
    assert "jp-out" in section
    row = section.split("jp-out", 1)[1].split("</tr>", 1)[0]
    assert f"<td>{before}</td><td>{after}</td>" in row
    assert "vn-out" not in section  # Viet Nam's exports: the designation by Japan changes nothing
    assert "The law changed" not in new


def test_cli_creates_the_first_admin(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "dfft.cli",
        "web",
        "user",
        "add",
        "boss",
        "--role",
        "admin",
        "--password-stdin",
        "--data-dir",
        str(tmp_path),
    ]
    r = subprocess.run(cmd, input=PASSWORD + "\n", capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    again = subprocess.run(cmd, input=PASSWORD + "\n", capture_output=True, text=True, timeout=120)
    assert again.returncode == 3 and "already exists" in again.stderr
    weak = subprocess.run(
        cmd[:6] + ["weak", "--password-stdin", "--data-dir", str(tmp_path)],
        input="short\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert weak.returncode == 3 and "12" in weak.stderr
    from dfft.api.db import open_database

    db = open_database(f"sqlite:///{tmp_path / 'dfft.db'}")
    try:
        acc = Accounts(db)
        assert acc.authenticate("boss", PASSWORD).role == "admin" and acc.authenticate("boss", "nope") is None
    finally:
        db.dispose()
