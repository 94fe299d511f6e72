"""DfftHook and the dfft connection type, outside a DAG run: the URL from host and port, the API reached with the
connection's key (a real dfft API on loopback), bad connections refused with a clear message."""

from __future__ import annotations

import json
import os
import urllib.parse

import pytest

pytest.importorskip(
    "airflow", reason="Airflow is not installed: tests/airflow runs in .ci/run's Airflow stage (.venv-airflow)"
)

from dfft.plugins.airflow.hooks import DfftHook, api_url_of  # noqa: E402
from dfft.plugins.guard import CheckUnavailable  # noqa: E402


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("http://127.0.0.1", 8000, "http://127.0.0.1:8000"),
        ("http://127.0.0.1:9000", 8000, "http://127.0.0.1:9000"),  # the host's own port wins
        ("dfft.internal", None, "https://dfft.internal"),  # a bare host name means https
        ("https://dfft.internal/prefix/", 8443, "https://dfft.internal:8443/prefix"),
    ],
)
def test_api_url_from_host_and_port(host, port, url):
    assert api_url_of(host, port) == url


@pytest.mark.parametrize(("host", "message"), [("", "is empty"), ("ftp://x", r"not an http\(s\) URL")])
def test_bad_hosts_are_refused(host, message):
    with pytest.raises(ValueError, match=message):
        api_url_of(host, None, "dfft_x")


def _conn(monkeypatch, conn_id: str, **fields) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "dfft", **fields}))


def test_hook_judges_through_the_connection(api_url, monkeypatch):
    port = urllib.parse.urlsplit(api_url).port
    _conn(monkeypatch, "dfft_hook", host="http://127.0.0.1", port=port, password=os.environ["DFFT_API_KEY"])
    hook = DfftHook("dfft_hook")
    assert hook.api_url == api_url and hook.api_key == os.environ["DFFT_API_KEY"]
    ok, message = hook.test_connection()
    assert ok, message
    d = hook.check({"origin": "JP", "destination": "KP", "data_categories": ["controlled_technology"]})
    assert d.verdict == "blocked" and "JP-embargo" in d.rule_ids
    r = hook.guard(origin="JP", destination="KP", data_categories=["controlled_technology"]).evaluate()
    assert r.mode == "api" and r.decision_id and not r.proceed


def test_wrong_key_fails_the_connection_test_and_the_check(api_url, monkeypatch):
    port = urllib.parse.urlsplit(api_url).port
    _conn(monkeypatch, "dfft_badkey", host="http://127.0.0.1", port=port, password="not-a-key")
    hook = DfftHook("dfft_badkey")
    ok, message = hook.test_connection()
    assert not ok and "401" in message
    with pytest.raises(CheckUnavailable, match="401"):
        hook.check({"origin": "JP", "destination": "VN", "data_categories": ["personal"]})


def test_unknown_extra_is_refused(monkeypatch):
    _conn(monkeypatch, "dfft_extra", host="http://127.0.0.1", port=1, extra={"timout": 3})
    with pytest.raises(ValueError, match="unknown extra field"):
        _ = DfftHook("dfft_extra").api_url


def test_the_key_is_registered_with_the_secrets_masker(monkeypatch):
    import secrets

    from airflow.sdk.log import redact

    key, other = f"dfft_{secrets.token_hex(12)}", f"dfft_{secrets.token_hex(12)}"
    _conn(monkeypatch, "dfft_masked", host="http://127.0.0.1", port=1, password=key)
    assert redact(f"key={key}") == f"key={key}"  # not known to the masker yet
    assert DfftHook("dfft_masked").api_key == key
    assert redact(f"key={key}") == "key=***"  # task logs and rendered templates show *** from now on
    assert redact(f"key={other}") == f"key={other}"


def test_the_old_operator_name_warns_and_builds_the_same_operator():
    from airflow.exceptions import AirflowProviderDeprecationWarning

    from dfft.plugins.airflow import DfftTransferCheckOperator, TransferCheckOperator

    with pytest.warns(AirflowProviderDeprecationWarning, match="use dfft.plugins.airflow.DfftTransferCheckOperator"):
        op = TransferCheckOperator(task_id="old", origin="JP", destination="VN", data_categories=["personal"])
    assert isinstance(op, DfftTransferCheckOperator) and op.destination == "VN"
