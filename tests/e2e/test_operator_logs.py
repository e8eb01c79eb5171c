"""Logs an operator can read: AGENTLOG_LOG_LEVEL; health checks, metrics scrapes and polling
reads at debug, so an open page does not flood the log; no token is ever logged."""

from __future__ import annotations

import json
import logging
import urllib.request
from pathlib import Path

from agentlog.transport.middleware.access_log import level_for, redacted_path, redacted_query
from tests.support.server import ServerProcess

TOKEN = "log-test-api-token-5e1f"


def call(
    url: str, method: str = "GET", body: bytes | None = None, token: str | None = TOKEN
) -> int:
    request = urllib.request.Request(url, data=body, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def access_lines(log: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [entry for entry in lines if entry.get("logger") == "agentlog.access"]


def exercise(server: ServerProcess) -> None:
    for _ in range(3):
        assert call(f"{server.url}/healthz") == 200
        assert call(f"{server.url}/metrics") == 200
        assert call(f"{server.url}/v1/sessions") == 200
    assert call(f"{server.url}/v1/sessions", "POST", b'{"id": "logged"}') == 201
    assert call(f"{server.url}/v1/sessions/logged/events?offset=0") == 200
    assert call(f"{server.url}/v1/sessions", token="wrong-token-value") == 401
    # The API token in a URL is refused (a URL ends up in logs), and not logged either.
    assert call(f"{server.url}/v1/sessions/logged/events?access_token={TOKEN}", token=None) == 401
    # Nor in any other shape a query can take (issue 22: `;` as a separator logged it in full).
    for query in [f"x=1;access_token={TOKEN}", f"access%5Ftoken={TOKEN}", f"t=x&TOKEN={TOKEN}"]:
        assert call(f"{server.url}/v1/sessions/logged/events?{query}", token=None) == 401


def test_at_info_only_writes_and_errors_are_logged_and_no_token(
    tmp_path: Path, sqlite_url: str
) -> None:
    env = {"AGENTLOG_DATABASE_URL": sqlite_url, "AGENTLOG_API_TOKEN": TOKEN}
    server = ServerProcess(tmp_path, env).start()
    try:
        exercise(server)
    finally:
        server.stop()
    log = server.log.read_text()
    logged = [str(entry["message"]) for entry in access_lines(log)]
    assert all(entry["level"] == "INFO" for entry in access_lines(log))
    assert any(m.startswith("POST /v1/sessions 201") for m in logged), logged
    assert any(m.startswith("GET /v1/sessions 401") for m in logged)
    assert not any("/healthz" in m or "/metrics" in m for m in logged)
    assert not any(m.startswith("GET /v1/sessions 200") for m in logged)  # polling reads
    assert TOKEN not in log and "wrong-token-value" not in log
    assert "access_token=REDACTED" in log


def test_at_debug_the_quiet_requests_are_there_too(tmp_path: Path, sqlite_url: str) -> None:
    env = {
        "AGENTLOG_DATABASE_URL": sqlite_url,
        "AGENTLOG_API_TOKEN": TOKEN,
        "AGENTLOG_LOG_LEVEL": "debug",
    }
    server = ServerProcess(tmp_path, env).start()
    try:
        exercise(server)
    finally:
        server.stop()
    log = server.log.read_text()
    debug = [str(e["message"]) for e in access_lines(log) if e["level"] == "DEBUG"]
    assert sum(m.startswith("GET /healthz 200") for m in debug) >= 3
    assert sum(m.startswith("GET /metrics 200") for m in debug) == 3
    assert TOKEN not in log


def test_levels_and_redaction() -> None:
    assert level_for("GET", "/healthz", 200, False) == logging.DEBUG
    assert level_for("GET", "/healthz", 503, False) == logging.WARNING
    assert level_for("GET", "/v1/sessions/a/events", 200, False) == logging.DEBUG
    assert level_for("GET", "/v1/sessions/a/events", 200, True) == logging.INFO  # a stream
    assert level_for("GET", "/v1/sessions/a/events", 404, False) == logging.INFO
    assert level_for("POST", "/v1/sessions", 201, False) == logging.INFO
    assert redacted_query("offset=3&access_token=agl1.x.y") == "offset=3&access_token=REDACTED"
    assert redacted_query("x=1;access_token=abc") == "x=1;access_token=REDACTED"
    assert redacted_query("access%5Ftoken=abc&a=b") == "access%5Ftoken=REDACTED&a=b"
    assert redacted_query("Api_Key=abc;password=p") == "Api_Key=REDACTED;password=REDACTED"
    # A session token is known by its shape, whatever the parameter is called or encoded.
    assert redacted_query("next=agl1.eyJ.sig") == "next=REDACTED"
    assert redacted_query("next=x%20agl1%252Eabc.def") == "next=REDACTED"
    assert redacted_path("/v1/sessions/agl1.eyJ.sig/events") == "/v1/sessions/REDACTED/events"
    assert redacted_path("/v1/sessions/a/events") == "/v1/sessions/a/events"
