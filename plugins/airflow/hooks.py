"""DfftHook and the `dfft` connection type: the API's URL and key from an Airflow connection (or a secrets backend).

    AIRFLOW_CONN_DFFT_DEFAULT='{"conn_type": "dfft", "host": "https://dfft.internal", "port": 8443,
                                "password": "<api key>", "extra": {"timeout": 10}}'

    DfftTransferCheckOperator(task_id="check", dfft_conn_id="dfft_default", origin="JP", ...)

Connection fields: **host** is the API's base URL (`https://dfft.internal`, `http://127.0.0.1:8000`; a bare host name
means https), **port** is added when the host has none, **password** is the API key (check scope). **extra** (JSON,
optional): `timeout` (seconds per call, default 10), `api_key_header` ("Authorization" sends `Bearer <key>`,
default; "X-API-Key" sends the key bare). The key is registered with Airflow's secrets masker, so it shows as `***` in
task logs and rendered templates.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional

from ...engine import Decision
from ..guard import ApiChecker, Guard

try:  # Airflow >= 3.1 exports the Task SDK's BaseHook here; 3.0 has it in airflow.hooks.base
    from airflow.sdk import BaseHook
except ImportError:  # pragma: no cover - depends on the Airflow release
    from airflow.hooks.base import BaseHook


def mask_secret(value: Optional[str]) -> None:
    """Register `value` with Airflow's secrets masker (task logs, rendered fields); a no-op for None/empty."""
    if not value:
        return
    try:
        from airflow.sdk.log import mask_secret as _mask
    except ImportError:  # pragma: no cover - depends on the Airflow release
        from airflow.sdk.execution_time.secrets_masker import mask_secret as _mask
    _mask(value)


def api_url_of(host: Optional[str], port: Optional[int], conn_id: str = "dfft") -> str:
    """The API's base URL from a connection's host (a URL or a bare host name: https) and port."""
    host = (host or "").strip()
    if not host:
        raise ValueError(f"connection {conn_id!r}: the host (the dfft API's URL, e.g. https://dfft.internal) is empty")
    if "://" not in host:
        host = "https://" + host
    parts = urllib.parse.urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"connection {conn_id!r}: host {host!r} is not an http(s) URL")
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{int(port)}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class DfftHook(BaseHook):
    """Talks to a dfft API configured by an Airflow connection of type `dfft` (default id `dfft_default`)."""

    conn_name_attr = "dfft_conn_id"
    default_conn_name = "dfft_default"
    conn_type = "dfft"
    hook_name = "dfft"

    def __init__(self, dfft_conn_id: str = default_conn_name, timeout: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dfft_conn_id = dfft_conn_id
        self._timeout = timeout
        self._settings: Optional[dict[str, Any]] = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "login"],
            "relabeling": {"host": "API URL", "password": "API key"},
            "placeholders": {
                "host": "https://dfft.internal (or http://127.0.0.1:8000)",
                "port": "added to the URL when it has none",
                "password": "a key with the check scope (dfft keys create --scope check)",
                "extra": json.dumps({"timeout": 10, "api_key_header": "Authorization"}),
            },
        }

    def _load(self) -> dict[str, Any]:
        if self._settings is None:
            conn = self.get_connection(self.dfft_conn_id)
            extra = conn.extra_dejson if isinstance(conn.extra_dejson, dict) else {}
            unknown = set(extra) - {"timeout", "api_key_header"}
            if unknown:
                raise ValueError(
                    f"connection {self.dfft_conn_id!r}: unknown extra field(s) {sorted(unknown)}; "
                    "expected timeout, api_key_header"
                )
            key = conn.password or None
            mask_secret(key)
            try:
                timeout = float(self._timeout if self._timeout is not None else extra.get("timeout", 10.0))
            except (TypeError, ValueError):
                raise ValueError(
                    f"connection {self.dfft_conn_id!r}: extra.timeout must be a number of seconds"
                ) from None
            self._settings = {
                "api_url": api_url_of(conn.host, conn.port, self.dfft_conn_id),
                "api_key": key,
                "timeout": timeout,
                "api_key_header": str(extra.get("api_key_header") or "Authorization"),
            }
        return self._settings

    @property
    def api_url(self) -> str:
        return str(self._load()["api_url"])

    @property
    def api_key(self) -> Optional[str]:
        return self._load()["api_key"]

    @property
    def timeout(self) -> float:
        return float(self._load()["timeout"])

    @property
    def api_key_header(self) -> str:
        return str(self._load()["api_key_header"])

    def get_conn(self) -> ApiChecker:
        """The checker the guard uses (POST /v1/check with the connection's URL, key and timeout)."""
        s = self._load()
        return ApiChecker(s["api_url"], s["api_key"], s["timeout"], s["api_key_header"])

    def guard(self, request: Optional[dict[str, Any]] = None, **kwargs: Any) -> Guard:
        """A `dfft.guard` judging through this connection (kwargs: request fields and guard options)."""
        return Guard(request, checker=self.get_conn(), **kwargs)

    def check(self, request: dict[str, Any]) -> Decision:
        """Judge one transfer request; raises RequestError (invalid) or CheckUnavailable (no verdict)."""
        return self.get_conn().check(request)

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: an authenticated GET /v1/rulesets/current."""
        try:
            s = self._load()
            req = urllib.request.Request(s["api_url"] + "/v1/rulesets/current", headers={"Accept": "application/json"})
            if s["api_key"]:
                header = s["api_key_header"]
                value = f"Bearer {s['api_key']}" if header.lower() == "authorization" else s["api_key"]
                req.add_header(header, value)
            with urllib.request.urlopen(req, timeout=s["timeout"]) as resp:
                body = json.loads(resp.read() or b"{}")
            version = body.get("version") if isinstance(body, dict) else None
            return True, f"dfft API at {s['api_url']} answered; rule set {version}"
        except urllib.error.HTTPError as e:
            return False, f"dfft API answered {e.code} {e.reason}"
        except Exception as e:
            return False, f"{type(e).__name__}: {e}"
