"""The workbench's pages under /ui, mounted on the service app by `mount(app)` (`dfft serve` does it).

Server-rendered (Jinja2), plain HTML forms, no script at all; every asset ships in the package (static/). Every page
needs a signed-in user (viewer, analyst or admin); every POST carries the session's CSRF token; every action is
recorded with the user (web_events, and single checks in the decisions audit log as caller `web:<user>`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

import yaml
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..api.audit import Judged, row_for
from ..engine import EngineError, RequestError
from ..rules.model import RuleSet
from ..whatif.matrix import all_destinations, load_profiles
from ..whatif.report import COLOURS, render_report
from ..whatif.scenario import ScenarioError, _list_refs, parse_scenario
from . import analyses as A
from .accounts import ROLES, AccountError, Accounts, User
from .i18n import LANGS, Translator, country_name, negotiate
from .inventory import parse_inventory, to_csv, validate_rows, whole_number
from .settings import WebSettings
from .store import Store

log = logging.getLogger("dfft.web")
HERE = Path(__file__).parent
PREFIX = "/ui"
SESSION_COOKIE = "dfft_session"
LOGIN_CSRF_COOKIE = "dfft_login_csrf"
LANG_COOKIE = "dfft_lang"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
REQUEST_FIELDS = (
    "origin",
    "destination",
    "via",
    "data_categories",
    "subjects",
    "safeguards",
    "exporter",
    "sector",
    "purpose",
    "as_of",
)
MAX_FORM_VALUES = 400

_env = Environment(
    loader=FileSystemLoader(str(HERE / "templates")),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
    extensions=["jinja2.ext.do"],
)
_env.filters["zip"] = lambda a, b: list(zip(a, b, strict=False))


class NeedLogin(Exception):
    pass


class Forbidden(Exception):
    status = 403

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(Forbidden):
    status = 404


class BadForm(Forbidden):
    status = 422


def _secure(request: Request, ws: WebSettings) -> bool:
    if ws.cookie_secure == "always":
        return True
    if ws.cookie_secure == "never":
        return False
    if request.url.scheme == "https":
        return True
    client = request.client.host if request.client else ""
    return client in ws.trusted_proxies and request.headers.get("x-forwarded-proto", "") == "https"


def _safe_next(nxt: Optional[str]) -> str:
    if nxt and nxt.startswith(PREFIX) and not nxt.startswith("//") and "\\" not in nxt and len(nxt) < 500:
        return nxt
    return PREFIX + "/"


def mount(app: FastAPI, settings: Optional[WebSettings] = None) -> APIRouter:
    """Add the workbench to a service app made by dfft.api.app.create_app."""
    ws = settings or WebSettings()
    db = app.state.db
    rules = app.state.rules
    audit = app.state.audit
    current = app.state.whatif["current"]  # (baseline rule set, shared engine pool), following reloads
    accounts = Accounts(db, session_seconds=ws.session_hours * 3600)
    store = Store(db)
    app.state.web = {"accounts": accounts, "store": store, "settings": ws}
    for p in (f"{PREFIX}/inventories/upload", f"{PREFIX}/scenarios/upload"):
        app.state.body_limits[p] = ws.max_upload + 64 * 1024
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    # -- who is asking ------------------------------------------------------------------------------------------
    def who(request: Request) -> Optional[tuple[User, str]]:
        if hasattr(request.state, "web_who"):
            return request.state.web_who
        found = None
        token = request.cookies.get(SESSION_COOKIE, "")
        live = accounts.session(token) if token else None
        header = ws.trusted_user_header
        client = request.client.host if request.client else ""
        if header and client in ws.trusted_proxies and request.headers.get(header):
            user = accounts.get(request.headers[header].strip())
            if user is not None:
                if live and live[0].username == user.username:
                    found = live
                else:
                    token, csrf = accounts.new_session(user.username)
                    request.state.web_new_session = token
                    accounts.record(user.username, "login", {"via": f"trusted header {header}"})
                    found = (user, csrf)
        elif live:
            found = live
        request.state.web_who = found
        return found

    def need(request: Request, role: str = "viewer") -> User:
        w = who(request)
        if w is None:
            raise NeedLogin()
        if not w[0].can(role):
            t = tr(request)
            raise Forbidden(
                t(
                    "This needs the {role} role; you are signed in as {user} ({have}).",
                    role=t(role),
                    user=w[0].username,
                    have=t(w[0].role),
                )
            )
        return w[0]

    async def form(request: Request, role: str = "viewer") -> tuple[User, Any]:
        user = need(request, role)
        data = await request.form(max_files=2, max_fields=MAX_FORM_VALUES)
        csrf = who(request)[1]  # type: ignore[index]
        sent = data.get("csrf")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), csrf.encode()):
            accounts.record(user.username, "csrf-refused", {"path": request.url.path})
            raise Forbidden(
                tr(request)(
                    "The form is out of date or did not come from this site (CSRF check failed). Reload the page and try again."
                )
            )
        return user, data

    def tr(request: Request) -> Translator:
        return Translator(negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")))

    def finish(request: Request, resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers["X-Frame-Options"] = "DENY"
        token = getattr(request.state, "web_new_session", None)
        if token:
            set_session(request, resp, token)
        return resp

    def set_session(request: Request, resp: Response, token: str) -> None:
        resp.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(ws.session_hours * 3600),
            httponly=True,
            samesite="strict",
            secure=_secure(request, ws),
            path=PREFIX,
        )

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        t = tr(request)
        w = who(request)
        rs = rules.engine.ruleset
        html = _env.get_template(name).render(
            _=t,
            t=t,
            lang=t.lang,
            langs=LANGS,
            user=w[0] if w else None,
            csrf=w[1] if w else "",
            prefix=PREFIX,
            path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            ruleset=rules.engine.ref,
            vocab=rs.vocabulary,
            colours=COLOURS,
            today=datetime.now(UTC).date(),
            **ctx,
        )
        return finish(request, HTMLResponse(html, status_code=status))

    def redirect(request: Request, to: str) -> Response:
        return finish(request, RedirectResponse(to, status_code=303))

    async def on_need_login(request: Request, _: Exception) -> Response:
        return finish(
            request, RedirectResponse(f"{PREFIX}/login?next={quote(_safe_next(request.url.path))}", status_code=303)
        )

    async def on_forbidden(request: Request, e: Exception) -> Response:
        return render(request, "error.html.j2", status=getattr(e, "status", 403), message=getattr(e, "message", str(e)))

    app.add_exception_handler(NeedLogin, on_need_login)
    app.add_exception_handler(Forbidden, on_forbidden)

    def options(rs: RuleSet, t: Translator) -> dict[str, Any]:
        """Everything the drop-downs offer, with labels in the page's language."""
        dests = all_destinations(rs)
        codes = sorted(set(dests) | set(rs.jurisdictions), key=lambda c: country_name(c, t.lang))
        return {
            "countries": [(c, f"{country_name(c, t.lang)} ({c})") for c in codes],
            "origins": [
                (c, f"{country_name(c, t.lang)} ({c})")
                for c in sorted(rs.jurisdictions, key=lambda c: country_name(c, t.lang))
            ],
            "categories": [
                (k, t.label("data_categories", k, v.title)) for k, v in rs.vocabulary.data_categories.items()
            ],
            "safeguards": [(k, t.label("safeguards", k, v)) for k, v in rs.vocabulary.safeguards.items()],
            "purposes": [(k, t.label("purposes", k, v)) for k, v in rs.vocabulary.purposes.items()],
            "exporters": [(k, t.label("exporters", k, v)) for k, v in rs.vocabulary.exporters.items()],
            "sectors": [(k, t.label("sectors", k, k)) for k in rs.vocabulary.sectors],
            "groups": [(g, t.label("groups", g, lst.title)) for g, lst in sorted(rs.groups.items())]
            + [(a, t.label("groups", a, a)) for a in sorted(rs.aliases)],
            "lists": [(ref, ref) for ref in _list_refs(rs)],
            # request model v2: the closed sets of rules/schema.py, labelled
            "roles": [
                ("controller", t("controller (decides why and how the data is processed)")),
                ("processor", t("processor (acts on another's behalf)")),
                ("data_subject", t("the person the data is about")),
            ],
            "relations": [
                ("third_party", t("another organisation")),
                ("group_company", t("a company of the same group")),
                ("same_entity", t("the same legal entity (own branch or office)")),
                ("employee", t("the exporter's own employee")),
                ("controller_of_exporter", t("the controller the exporter works for")),
            ],
            "recipient_roles": [("controller", t("controller")), ("processor", t("processor"))],
            "access": [
                ("full", t("can access the data")),
                ("none", t("cannot access the data (e.g. encrypted storage)")),
            ],
            "recipient_kinds": [
                ("private", t("private organisation")),
                ("public_authority", t("public authority")),
                ("court", t("court")),
                ("international_organisation", t("international organisation")),
            ],
            "rules": sorted(r.id for r in rs.all_rules()),
            "profiles": load_profiles(),
        }

    # -- sign in and out, language ------------------------------------------------------------------------------
    @router.get("/login")
    def login_page(request: Request, next: str = PREFIX + "/"):
        token = secrets.token_urlsafe(32)
        resp = render(request, "login.html.j2", login_csrf=token, next=_safe_next(next), error=None)
        resp.set_cookie(
            LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request, ws), path=PREFIX
        )
        return resp

    @router.post("/login")
    async def login(request: Request):
        data = await request.form(max_files=0, max_fields=10)
        sent, cookie = str(data.get("csrf", "")), request.cookies.get(LOGIN_CSRF_COOKIE, "")
        nxt = _safe_next(str(data.get("next", "")))
        t = tr(request)
        if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
            raise Forbidden(
                t(
                    "The form is out of date or did not come from this site (CSRF check failed). Reload the page and try again."
                )
            )
        username = str(data.get("username", ""))[:64]
        user = await asyncio.to_thread(accounts.authenticate, username, str(data.get("password", "")))
        if user is None:
            accounts.record(username or "-", "login-failed", {})
            token = secrets.token_urlsafe(32)
            resp = render(
                request,
                "login.html.j2",
                status=401,
                login_csrf=token,
                next=nxt,
                error=t("Wrong user name or password."),
            )
            resp.set_cookie(
                LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request, ws), path=PREFIX
            )
            return resp
        token, _ = accounts.new_session(user.username)
        accounts.record(user.username, "login", {})
        resp = RedirectResponse(nxt, status_code=303)
        set_session(request, resp, token)
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
        return finish(request, resp)

    @router.post("/logout")
    async def logout(request: Request):
        user, _ = await form(request)
        accounts.end_session(request.cookies.get(SESSION_COOKIE, ""))
        accounts.record(user.username, "logout", {})
        resp = RedirectResponse(f"{PREFIX}/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return finish(request, resp)

    @router.get("/lang/{code}")
    def set_lang(request: Request, code: str, next: str = PREFIX + "/"):
        resp = RedirectResponse(_safe_next(next), status_code=303)
        if code in LANGS:
            resp.set_cookie(
                LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", secure=_secure(request, ws), path=PREFIX
            )
        return finish(request, resp)

    # -- home, glossary -----------------------------------------------------------------------------------------
    @router.get("/")
    def home(request: Request):
        need(request)
        cur = rules.engine.hash
        items = store.list("analysis", 20)
        stale = sum(1 for a in items if a["ruleset_hash"] != cur)
        return render(request, "home.html.j2", analyses=items, stale=stale)

    @router.get("/glossary")
    def glossary(request: Request):
        need(request)
        rs = rules.engine.ruleset
        return render(request, "glossary.html.j2", o=options(rs, tr(request)), rs=rs)

    # -- single check -------------------------------------------------------------------------------------------
    def request_from_form(data: Any, errors: dict[str, str], t: Translator) -> dict[str, Any]:
        req: dict[str, Any] = {}
        for k in ("origin", "destination", "exporter", "sector", "purpose"):
            v = str(data.get(k) or "").strip()
            if v:
                req[k] = v
        for k in ("data_categories", "safeguards", "via"):
            vals = [str(v).strip() for v in data.getlist(k) if str(v).strip()][:64]
            if vals:
                req[k] = vals
        s = str(data.get("subjects") or "").strip()
        if s:
            try:
                req["subjects"] = whole_number(s)
            except ValueError:
                errors["subjects"] = t("Enter a whole number, e.g. 1000 or 1,000.")
        d = str(data.get("as_of") or "").strip()
        if d:
            try:
                req["as_of"] = date.fromisoformat(d).isoformat()
            except ValueError:
                errors["as_of"] = t("Enter a date as YYYY-MM-DD.")
        # request model v2 (the "Parties and circumstances" section): only what differs from the defaults is sent
        role = str(data.get("exporter_role") or "").strip()
        if role and role != "controller":
            req["exporter_role"] = role
        rec = {
            k: str(data.get(f"recipient_{k}") or "").strip()
            for k in ("relation", "role", "access", "kind")
            if str(data.get(f"recipient_{k}") or "").strip()
        }
        defaults = {"relation": "third_party", "role": "controller", "access": "full", "kind": "private"}
        if any(rec.get(k, v) != v for k, v in defaults.items()):
            req["recipient"] = rec
        transit = [str(v).strip() for v in data.getlist("transit") if str(v).strip()][:16]
        if transit:
            req["via"] = [*req.get("via", []), *({"jurisdiction": c, "transit": True} for c in transit)]
        where = [str(v).strip() for v in data.getlist("subjects_in") if str(v).strip()][:64]
        if where:
            req["subjects_in"] = where
        if str(data.get("publicly_available") or "") == "true":
            req["publicly_available"] = True
        return req

    def field_errors(e: RequestError) -> dict[str, str]:
        out: dict[str, str] = {}
        for x in e.errors:
            f = str(x.get("field", "request")).split(".")[0]
            out[f] = (out.get(f, "") + " " + str(x.get("message", ""))).strip()
        return out

    @router.get("/check")
    def check_page(request: Request):
        need(request)
        rs = rules.engine.ruleset
        return render(request, "check.html.j2", o=options(rs, tr(request)), req={}, errors={}, decision=None)

    @router.post("/check")
    async def check(request: Request):
        user, data = await form(request)
        t = tr(request)
        rs = rules.engine.ruleset
        errors: dict[str, str] = {}
        req = request_from_form(data, errors, t)
        decision = None
        if not errors:
            try:
                with rules.lease() as eng:
                    decision = eng.check(req)
                row = row_for(Judged.of(decision), f"web:{user.username}"[:64])
                await asyncio.wrap_future(audit.submit([row]))
                accounts.record(user.username, "check", {"decision_id": row["id"], "verdict": decision.verdict})
            except RequestError as e:
                errors = field_errors(e)
            except EngineError:
                raise Forbidden(
                    t("The engine failed on this request: no verdict. Treat the transfer as not allowed.")
                ) from None
        return render(
            request,
            "check.html.j2",
            status=422 if errors else 200,
            o=options(rs, t),
            req=req,
            errors=errors,
            decision=decision,
        )

    # -- inventories --------------------------------------------------------------------------------------------
    def inventory(oid: str) -> dict[str, Any]:
        obj = store.get("inventory", oid)
        if obj is None:
            raise NotFound("no such inventory")
        obj["rows"] = json.loads(obj["body"])
        return obj

    @router.get("/inventories")
    def inventories(request: Request):
        need(request)
        return render(request, "inventories.html.j2", items=store.list("inventory"), errors=[])

    @router.post("/inventories/upload")
    async def upload(request: Request):
        user, data = await form(request, "analyst")
        t = tr(request)
        f = data.get("file")
        if f is None or isinstance(f, str) or not getattr(f, "filename", ""):
            return render(
                request,
                "inventories.html.j2",
                status=422,
                items=store.list("inventory"),
                errors=[t("Choose a file to upload.")],
            )
        raw = await f.read(ws.max_upload + 1)
        if len(raw) > ws.max_upload:
            return render(
                request,
                "inventories.html.j2",
                status=413,
                items=store.list("inventory"),
                errors=[t("The file is larger than {n} bytes.", n=f"{ws.max_upload:,}")],
            )
        parsed = await asyncio.to_thread(parse_inventory, f.filename, raw, ws.max_rows)
        if parsed.errors:
            accounts.record(user.username, "inventory-refused", {"file": f.filename, "errors": len(parsed.errors)})
            return render(
                request,
                "inventories.html.j2",
                status=422,
                items=store.list("inventory"),
                errors=[str(e) for e in parsed.errors[:200]],
                more=max(0, len(parsed.errors) - 200),
            )
        name = str(data.get("name") or "").strip() or f.filename
        oid = store.save("inventory", name, user.username, parsed.rows)
        accounts.record(
            user.username,
            "inventory-upload",
            {"id": oid, "file": f.filename, "format": parsed.format, "rows": len(parsed.rows)},
        )
        return redirect(request, f"{PREFIX}/inventories/{oid}")

    @router.get("/inventories/{oid}")
    def inventory_page(request: Request, oid: str, edit: Optional[str] = None):
        need(request)
        inv = inventory(oid)
        problems = validate_rows(inv["rows"], rules.engine.ruleset)
        rs = rules.engine.ruleset
        return render(
            request,
            "inventory.html.j2",
            inv=inv,
            problems=problems,
            edit=edit,
            o=options(rs, tr(request)),
            fields=REQUEST_FIELDS,
        )

    @router.post("/inventories/{oid}/rows")
    async def inventory_rows(request: Request, oid: str):
        user, data = await form(request, "analyst")
        inv = inventory(oid)
        rows = inv["rows"]
        action = str(data.get("action", ""))
        rid = str(data.get("row", ""))[:200]
        t = tr(request)
        if action == "delete":
            rows = [r for r in rows if r["id"] != rid]
        elif action == "save":
            errors: dict[str, str] = {}
            req = request_from_form(data, errors, t)
            new_id = str(data.get("id") or "").strip()[:200] or rid or f"row {len(rows) + 1}"
            if errors:
                raise BadForm("; ".join(errors.values()))
            req["id"] = new_id
            if rid and any(r["id"] == rid for r in rows):
                rows = [req if r["id"] == rid else r for r in rows]
            else:
                if len(rows) >= ws.max_rows:
                    raise Forbidden(t("At most {n} transfers in one inventory.", n=f"{ws.max_rows:,}"))
                rows.append(req)
        else:
            raise BadForm("unknown action")
        store.update_body("inventory", oid, rows)
        accounts.record(user.username, f"inventory-row-{action}", {"inventory": oid, "row": rid})
        return redirect(request, f"{PREFIX}/inventories/{oid}")

    @router.get("/inventories/{oid}/export.{fmt}")
    def inventory_export(request: Request, oid: str, fmt: str):
        user = need(request)
        inv = inventory(oid)
        accounts.record(user.username, "inventory-export", {"inventory": oid, "format": fmt})
        if fmt == "csv":
            body, mt = "\ufeff" + to_csv(inv["rows"]), "text/csv; charset=utf-8"
        elif fmt == "json":
            body, mt = json.dumps({"requests": inv["rows"]}, ensure_ascii=False, indent=1), "application/json"
        else:
            raise BadForm("export as csv or json")
        return finish(
            request,
            Response(
                body, media_type=mt, headers={"Content-Disposition": f'attachment; filename="inventory-{oid}.{fmt}"'}
            ),
        )

    # -- scenarios ----------------------------------------------------------------------------------------------
    def scenario_from_form(data: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": str(data.get("name") or "").strip()[:200]}
        if str(data.get("description") or "").strip():
            doc["description"] = str(data.get("description")).strip()[:2000]
        if str(data.get("as_of") or "").strip():
            doc["as_of"] = str(data.get("as_of")).strip()
        facts = []
        for i in range(4):
            add, rem = str(data.get(f"f{i}_add") or ""), str(data.get(f"f{i}_remove") or "")
            if not add and not rem:
                continue
            fc: dict[str, Any] = {}
            where = {}
            for side in ("origin", "destination"):
                w = str(data.get(f"f{i}_{side}") or "")
                if w:
                    where[side] = w if not (len(w) == 2 and w.isupper() and w not in ("EU",)) else [w]
            if where:
                fc["where"] = where
            if add:
                fc["add_safeguards"] = [add]
            if rem:
                fc["remove_safeguards"] = [rem]
            facts.append(fc)
        if facts:
            doc["facts"] = facts
        law: dict[str, Any] = {}
        lists: list[dict[str, Any]] = []
        for i in range(3):
            lst, code = str(data.get(f"l{i}_list") or ""), str(data.get(f"l{i}_code") or "")
            if lst and code:
                op = str(data.get(f"l{i}_op") or "add")
                frm = str(data.get(f"l{i}_from") or "")
                if op == "remove":
                    lists.append({"list": lst, "remove": [code]})
                else:
                    member: Any = {"code": code, "from": frm} if frm else code
                    lists.append({"list": lst, "add": [member]})
        if lists:
            law["lists"] = lists
        dis = [str(v) for v in data.getlist("disable_rules") if str(v)][:64]
        if dis:
            law["disable_rules"] = dis
        if law:
            doc["law"] = law
        return doc

    @router.get("/scenarios")
    def scenarios(request: Request):
        need(request)
        rs = rules.engine.ruleset
        return render(
            request, "scenarios.html.j2", items=store.list("scenario"), o=options(rs, tr(request)), errors=[], sent={}
        )

    @router.post("/scenarios")
    async def scenario_create(request: Request):
        user, data = await form(request, "analyst")
        rs = rules.engine.ruleset
        doc = scenario_from_form(data)
        return save_scenario(request, user, doc, rs, {k: data.get(k) for k in data})

    @router.post("/scenarios/upload")
    async def scenario_upload(request: Request):
        user, data = await form(request, "analyst")
        rs = rules.engine.ruleset
        f = data.get("file")
        t = tr(request)
        try:
            raw = await f.read(ws.max_upload + 1) if f is not None and not isinstance(f, str) else b""
            doc = yaml.safe_load(raw.decode("utf-8-sig")) if raw and len(raw) <= ws.max_upload else None
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            doc, err = None, str(e)[:300]
        else:
            err = t("Choose a scenario file (YAML or JSON).")
        if not isinstance(doc, dict):
            return render(
                request,
                "scenarios.html.j2",
                status=422,
                items=store.list("scenario"),
                o=options(rs, t),
                errors=[err],
                sent={},
            )
        return save_scenario(request, user, doc, rs, {})

    def save_scenario(request: Request, user: User, doc: dict[str, Any], rs: RuleSet, sent: dict[str, Any]) -> Response:
        try:
            sc = parse_scenario(json.loads(json.dumps(doc, default=str)), rs, source="form")
        except ScenarioError as e:
            return render(
                request,
                "scenarios.html.j2",
                status=422,
                items=store.list("scenario"),
                o=options(rs, tr(request)),
                errors=[str(p) for p in e.problems],
                sent=sent,
            )
        text = yaml.safe_dump(json.loads(json.dumps(doc, default=str)), sort_keys=False, allow_unicode=True)
        oid = store.save("scenario", sc.name, user.username, text)
        accounts.record(user.username, "scenario-save", {"id": oid, "name": sc.name, "changes": sc.summary()})
        return redirect(request, f"{PREFIX}/scenarios/{oid}")

    def scenario_obj(oid: str) -> dict[str, Any]:
        obj = store.get("scenario", oid)
        if obj is None:
            raise NotFound("no such scenario")
        return obj

    @router.get("/scenarios/{oid}")
    def scenario_page(request: Request, oid: str):
        need(request)
        obj = scenario_obj(oid)
        try:
            sc = parse_scenario(yaml.safe_load(obj["body"]), rules.engine.ruleset, source=obj["name"])
            summary, problems = sc.summary(), []
        except ScenarioError as e:
            summary, problems = [], [str(p) for p in e.problems]
        return render(request, "scenario.html.j2", obj=obj, summary=summary, problems=problems)

    @router.get("/scenarios/{oid}/scenario.yaml")
    def scenario_download(request: Request, oid: str):
        need(request)
        obj = scenario_obj(oid)
        return finish(
            request,
            Response(
                obj["body"],
                media_type="application/yaml",
                headers={"Content-Disposition": f'attachment; filename="scenario-{oid}.yaml"'},
            ),
        )

    # -- analyses -----------------------------------------------------------------------------------------------
    @router.get("/analyses")
    def analyses_page(request: Request, kind: str = "diff"):
        need(request)
        rs = rules.engine.ruleset
        return render(
            request,
            "analyses.html.j2",
            kind=kind if kind in A.KINDS else "diff",
            items=store.list("analysis"),
            inventories=store.list("inventory"),
            scenarios=store.list("scenario"),
            o=options(rs, tr(request)),
            errors=[],
            req={},
            current_hash=rules.engine.hash,
        )

    def run_and_save(user: User, kind: str, name: str, params: dict[str, Any], previous: Optional[str] = None) -> str:
        rs, pool = current()
        result = A.run(kind, params, rs, pool)
        body = {"kind": kind, "params": params, "result": result.model_dump(mode="json")}
        oid = store.save(
            "analysis", name, user.username, body, ruleset=(rs.version, pool.hash_of(rs)), previous=previous
        )
        accounts.record(user.username, "analysis-run", {"id": oid, "kind": kind, "name": name, "previous": previous})
        return oid

    @router.post("/analyses")
    async def analysis_create(request: Request):
        user, data = await form(request, "analyst")
        t = tr(request)
        kind = str(data.get("kind") or "")
        if kind not in A.KINDS:
            raise BadForm("unknown analysis")
        params: dict[str, Any] = {}
        errors: list[str] = []
        sid = str(data.get("scenario") or "")
        if sid:
            params["scenario"] = yaml.safe_load(scenario_obj(sid)["body"])
            params["scenario_id"] = sid
        if str(data.get("as_of") or ""):
            params["as_of"] = str(data.get("as_of"))
        if kind == "diff":
            iid = str(data.get("inventory") or "")
            if not iid:
                errors.append(t("Choose an inventory."))
            else:
                inv = inventory(iid)
                params["rows"], params["inventory_id"] = inv["rows"], iid
        elif kind == "matrix":
            params["origins"] = [str(v) for v in data.getlist("origins") if v][:64]
            params["profiles"] = [str(v) for v in data.getlist("profiles") if v][:16]
        else:
            ferr: dict[str, str] = {}
            params["request"] = request_from_form(data, ferr, t)
            errors += [f"{k}: {v}" for k, v in ferr.items()]
            if kind == "timeline":
                params["start"] = str(data.get("start") or "2018-01-01")
                params["end"] = str(data.get("end") or "2030-12-31")
        name = str(data.get("name") or "").strip()[:200] or f"{t(kind)} {datetime.now(UTC):%Y-%m-%d %H:%M}"
        if not errors:
            try:
                oid = await asyncio.to_thread(run_and_save, user, kind, name, params)
                return redirect(request, f"{PREFIX}/analyses/{oid}")
            except ScenarioError as e:
                errors = [str(p) for p in e.problems]
            except RequestError as e:
                errors = [f"{x.get('field')}: {x.get('message')}" for x in e.errors]
            except ValueError as e:
                errors = [str(e)]
        rs = rules.engine.ruleset
        return render(
            request,
            "analyses.html.j2",
            status=422,
            kind=kind,
            items=store.list("analysis"),
            inventories=store.list("inventory"),
            scenarios=store.list("scenario"),
            o=options(rs, t),
            errors=errors,
            req=params.get("request", {}),
            current_hash=rules.engine.hash,
        )

    def analysis_obj(oid: str) -> dict[str, Any]:
        obj = store.get("analysis", oid)
        if obj is None:
            raise NotFound("no such analysis")
        body = json.loads(obj["body"])
        obj["kind"], obj["params"] = body["kind"], body["params"]
        obj["result"] = A.load(body["kind"], body["result"])
        return obj

    @router.get("/analyses/{oid}")
    def analysis_page(request: Request, oid: str, changed: Optional[str] = None):
        need(request)
        obj = analysis_obj(oid)
        prev, law = None, []
        if obj["previous_id"]:
            p = store.get("analysis", obj["previous_id"])
            if p is not None:
                prev = analysis_obj(obj["previous_id"])
                law = A.changes(obj["kind"], prev["result"], obj["result"])
        ctx: dict[str, Any] = {}
        if obj["kind"] == "matrix":
            ctx["heat"] = heatmap(obj["result"], bool(changed))
        if obj["kind"] == "timeline":
            ctx["chart"] = timeline_chart(obj["result"])
        if obj["kind"] == "remedy":
            ctx["shared"] = shared_obligations(obj["result"])
        return render(
            request,
            "analysis.html.j2",
            obj=obj,
            r=obj["result"],
            only_changed=bool(changed),
            stale=obj["ruleset_hash"] != rules.engine.hash,
            prev=prev,
            law=law,
            **ctx,
        )

    @router.get("/analyses/{oid}/report.html")
    def analysis_report(request: Request, oid: str):
        user = need(request)
        obj = analysis_obj(oid)
        sc = None
        if obj["params"].get("scenario"):
            try:
                sc = parse_scenario(obj["params"]["scenario"], rules.engine.ruleset)
            except ScenarioError:
                sc = None
        html = render_report(
            obj["name"],
            scenario=sc,
            ruleset=type("R", (), {"version": obj["ruleset_version"], "hash": obj["ruleset_hash"]}),
            **{obj["kind"]: obj["result"]},
        )
        accounts.record(user.username, "analysis-report", {"id": oid})
        resp = Response(
            html,
            media_type="text/html; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="dfft-{obj["kind"]}-{oid}.html"'},
        )
        finish(request, resp)
        resp.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
        )
        return resp

    @router.post("/analyses/{oid}/rerun")
    async def analysis_rerun(request: Request, oid: str):
        user, _ = await form(request, "analyst")
        obj = analysis_obj(oid)
        new = await asyncio.to_thread(run_and_save, user, obj["kind"], obj["name"], obj["params"], oid)
        return redirect(request, f"{PREFIX}/analyses/{new}")

    @router.post("/analyses/rerun-stale")
    async def rerun_stale(request: Request):
        user, _ = await form(request, "analyst")
        cur = rules.engine.hash
        latest: dict[str, dict[str, Any]] = {}
        superseded = {a["previous_id"] for a in store.list("analysis") if a["previous_id"]}
        for a in store.list("analysis"):
            if a["ruleset_hash"] != cur and a["id"] not in superseded:
                latest[a["id"]] = a
        for aid in latest:
            obj = analysis_obj(aid)
            await asyncio.to_thread(run_and_save, user, obj["kind"], obj["name"], obj["params"], aid)
        accounts.record(user.username, "analysis-rerun-stale", {"count": len(latest)})
        return redirect(request, f"{PREFIX}/analyses")

    # -- administration -----------------------------------------------------------------------------------------
    @router.get("/admin")
    def admin(request: Request):
        need(request, "admin")
        return render(
            request, "admin.html.j2", users=accounts.users(), events=accounts.events(100), roles=ROLES, error=None
        )

    @router.post("/admin/users")
    async def admin_users(request: Request):
        user, data = await form(request, "admin")
        action = str(data.get("action", ""))
        name = str(data.get("username", "")).strip()
        try:
            if action == "add":
                accounts.add_user(name, str(data.get("password", "")), str(data.get("role", "")))
            elif action == "role":
                accounts.set_role(name, str(data.get("role", "")))
            elif action == "disable":
                if name == user.username:
                    raise AccountError("you cannot disable yourself")
                accounts.disable(name)
            else:
                raise AccountError("unknown action")
        except AccountError as e:
            return render(
                request,
                "admin.html.j2",
                status=422,
                users=accounts.users(),
                events=accounts.events(100),
                roles=ROLES,
                error=str(e),
            )
        accounts.record(user.username, f"user-{action}", {"user": name, "role": str(data.get("role", ""))})
        return redirect(request, f"{PREFIX}/admin")

    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(HERE / "static")), name="web-static")

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    return router


# -- charts -----------------------------------------------------------------------------------------------------
LETTER = {"allowed": "A", "conditional": "C", "blocked": "B", "-": "–"}


def heatmap(m: Any, only_changed: bool) -> dict[str, Any]:
    cells = {(c.origin, c.profile, c.destination): c for c in m.cells}
    rows = [(o, p) for o in m.origins for p in m.profiles]
    dests = list(m.destinations)

    def changed(c: Any) -> bool:
        return c is not None and c.scenario_verdict is not None and c.scenario_verdict != c.verdict

    if only_changed:
        rows = [(o, p) for o, p in rows if any(changed(cells.get((o, p.name, d))) for d in dests)]
        dests = [d for d in dests if any(changed(cells.get((o, p.name, d))) for o, p in rows)]
    n_changed = sum(1 for c in m.cells if changed(c))
    return {"cells": cells, "rows": rows, "dests": dests, "letter": LETTER, "changed": changed, "n_changed": n_changed}


def timeline_chart(t: Any, width: int = 720) -> dict[str, Any]:
    span = max((t.end - t.start).days, 1)

    def x(d: date) -> float:
        return round(min(max((d - t.start).days, 0), span) / span * width, 1)

    def bars(segs: Any) -> list[dict[str, Any]]:
        return [
            {
                "x": x(s.start),
                "w": max(x(min(s.end or t.end, t.end)) - x(s.start), 2),
                "seg": s,
                "colour": COLOURS[s.verdict],
                "letter": LETTER[s.verdict],
            }
            for s in segs
        ]

    events = [s for s in t.segments if s.changes] + [s for s in t.scenario_segments if s.changes]
    today = datetime.now(UTC).date()
    years = [date(y, 1, 1) for y in range(t.start.year + 1, t.end.year + 1)]
    return {
        "width": width,
        "rows": [("baseline", bars(t.segments))]
        + ([("scenario", bars(t.scenario_segments))] if t.scenario_segments else []),
        "events": [{"x": x(s.start), "seg": s} for s in events],
        "today": x(today) if t.start <= today <= t.end else None,
        "years": [{"x": x(y), "label": y.year} for y in years],
    }


def shared_obligations(r: Any) -> dict[str, Any]:
    """Obligations every remedy brings (shown once) and, per remedy, the ones only it brings."""
    if not r.remedies:
        return {"common": [], "own": {}}
    ids = [{o.id for o in rem.obligations} for rem in r.remedies]
    common_ids = set.intersection(*ids)
    common = [o for o in r.remedies[0].obligations if o.id in common_ids]
    own = {i: [o for o in rem.obligations if o.id not in common_ids] for i, rem in enumerate(r.remedies)}
    return {"common": common, "own": own}
