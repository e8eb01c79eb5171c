"""The PostgreSQL pool resets nothing on release (infra/postgres/event_store.py,
`keep_session_state`), which is right only while no code leaves session state on a pooled
connection: a session-level advisory lock, a session SET, a held cursor, a LISTEN. This
reads the code for any of them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The LISTEN connection is its own, never a pooled one.
OWN_CONNECTION = {ROOT / "infra" / "postgres" / "wakeups.py"}
SESSION_STATE = re.compile(
    r"pg_(?:try_)?advisory_lock(?:_shared)?\s*\("  # released only by unlock or disconnect
    r"|execute\(\s*f?[\"']SET\s+(?!LOCAL\b)"  # a session setting (SET LOCAL ends with its txn)
    r"|set_config\([^)]*false"  # set_config(..., is_local => false)
    r"|WITH\s+HOLD"  # a cursor that outlives its transaction
    r"|(?-i:[\"']LISTEN\s)|add_listener\(",  # a statement LISTEN, not the word in a comment
    re.IGNORECASE,
)


def session_state_in(source: str) -> list[str]:
    return [m.group(0) for m in SESSION_STATE.finditer(source)]


def test_no_code_leaves_session_state_on_a_pooled_connection() -> None:
    found = {
        str(path.relative_to(ROOT)): hits
        for folder in ("infra", "transport")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path not in OWN_CONNECTION and (hits := session_state_in(path.read_text()))
    }
    assert found == {}


def test_the_reader_finds_each_kind_of_session_state() -> None:
    for statement in [
        "await conn.fetchval('SELECT pg_advisory_lock(1)')",
        "await conn.fetchval('SELECT pg_try_advisory_lock(1)')",
        "await conn.execute(\"SET lock_timeout = '1s'\")",
        "await conn.execute(\"SELECT set_config('x.y', '1', false)\")",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "await conn.add_listener('channel', callback)",
        "await conn.execute('LISTEN channel')",
    ]:
        assert session_state_in(statement), statement
    for statement in [
        "await conn.execute(\"SET LOCAL lock_timeout = '1s'\")",
        "SELECT pg_advisory_xact_lock(hashtext('agentlog-migrate'))",
        "UPDATE t SET ended_seq = e.seq",
        "# the LISTEN connection is its own",
    ]:
        assert not session_state_in(statement), statement
