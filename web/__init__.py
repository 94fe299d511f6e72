"""The privacy officers' workbench in the browser: server-rendered pages (Jinja2, plain forms, no scripts from
elsewhere) for single checks, inventories, what-if scenarios and analyses, in English and Japanese.

    from dfft.web import mount
    mount(app)          # app = dfft.api.app.create_app(...); `dfft serve` does this, pages under /ui

Accounts (viewer / analyst / admin), sessions and CSRF tokens live in the service database (api/db.py,
migration 0003); every action is recorded with the user (web_events; single checks also in the decisions
audit log, caller `web:<user>`).
"""

from .accounts import ROLES, Accounts, hash_password, verify_password
from .app import mount
from .settings import WebSettings

__all__ = ["ROLES", "Accounts", "WebSettings", "hash_password", "mount", "verify_password"]
