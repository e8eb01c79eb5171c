"""Domain errors: each names what was wrong so the edge can answer with a precise 4xx."""

from __future__ import annotations


class AgentlogError(Exception):
    """Base of every error agentlog raises on purpose."""

    code = "error"


class InvalidAppend(AgentlogError):
    """The batch itself is unacceptable (empty, wrong types, too large); nothing was written."""

    code = "invalid_append"


class EventTooLarge(InvalidAppend):
    code = "event_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"event of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class UnknownSession(AgentlogError):
    code = "unknown_session"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} does not exist")
        self.session_id = session_id


class SessionAlreadyExists(AgentlogError):
    code = "session_exists"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} already exists")
        self.session_id = session_id


class ExpectedSeqMismatch(AgentlogError):
    """Optimistic concurrency: the caller's view of the session is stale; nothing was written."""

    code = "expected_seq_mismatch"

    def __init__(self, session_id: str, expected: int, head: int) -> None:
        super().__init__(
            f"session {session_id!r} is at seq {head}, not at the expected seq {expected}"
        )
        self.session_id = session_id
        self.expected = expected
        self.head = head


class StoreUnavailable(AgentlogError):
    """The store could not complete an append after bounded retries; it may not be written."""

    code = "store_unavailable"


class StoreClosed(StoreUnavailable):
    """The store was closed (the process is shutting down): retrying cannot help."""

    code = "store_unavailable"


class RunAlreadyActive(AgentlogError):
    """One active run per session: a second start is refused with the active run's id."""

    code = "run_active"
    http_status = 409

    def __init__(self, session_id: str, run_id: str) -> None:
        super().__init__(f"session {session_id!r} already has an active run {run_id!r}")
        self.session_id = session_id
        self.run_id = run_id
        self.details = {"session_id": session_id, "run_id": run_id}


class UnknownRun(AgentlogError):
    code = "unknown_run"
    http_status = 404

    def __init__(self, session_id: str, run_id: str) -> None:
        super().__init__(f"session {session_id!r} has no run {run_id!r}")
        self.details = {"session_id": session_id, "run_id": run_id}


class RunNotActive(AgentlogError):
    """The run exists but has already ended."""

    code = "run_not_active"
    http_status = 409

    def __init__(self, session_id: str, run_id: str) -> None:
        super().__init__(f"run {run_id!r} of session {session_id!r} is not active")
        self.details = {"session_id": session_id, "run_id": run_id}


class RunFenced(AgentlogError):
    """A run's writer appended after its run stopped being the session's current run (ended,
    abandoned, or superseded by a newer run): nothing was written, and the writer must stop."""

    code = "run_fenced"
    http_status = 409

    def __init__(self, session_id: str, run_id: str, why: str) -> None:
        super().__init__(f"run {run_id!r} of session {session_id!r} may no longer write: {why}")
        self.details = {"session_id": session_id, "run_id": run_id}


class IdempotencyKeyReused(AgentlogError):
    """An idempotency key was sent again with a different request; nothing was written."""

    code = "idempotency_key_reused"
    http_status = 422

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different request")
        self.details = {"idempotency_key": key}


class SessionDeleted(AgentlogError):
    """The session was deleted: only its tombstone is left, and its id is never reused."""

    code = "session_deleted"
    http_status = 410

    def __init__(self, session_id: str, deleted_at: str | None = None) -> None:
        super().__init__(f"session {session_id!r} was deleted")
        self.session_id = session_id
        self.details = {"session_id": session_id, "deleted_at": deleted_at}


class UnknownApproval(AgentlogError):
    code = "unknown_approval"
    http_status = 404

    def __init__(self, session_id: str, approval_id: str) -> None:
        super().__init__(f"session {session_id!r} has no approval {approval_id!r}")
        self.details = {"session_id": session_id, "approval_id": approval_id}


class ApprovalAlreadyAnswered(AgentlogError):
    """Exactly one answer per approval: a different second answer is refused."""

    code = "approval_answered"
    http_status = 409

    def __init__(self, approval_id: str, approved: bool | None, message: str | None = None) -> None:
        answer = "approved" if approved else "denied"
        super().__init__(message or f"approval {approval_id!r} was already {answer}")
        self.details = {"approval_id": approval_id, "approved": approved}


class ApprovalPending(AgentlogError):
    """A new prompt while the session waits for a tool approval: answer it first."""

    code = "approval_pending"
    http_status = 409

    def __init__(self, session_id: str, approval_ids: list[str]) -> None:
        super().__init__(
            f"session {session_id!r} waits for tool approval {', '.join(approval_ids)}: "
            "answer it first (POST /v1/sessions/{id}/approvals/{approval_id})"
        )
        self.details = {"session_id": session_id, "approval_ids": approval_ids}


class RewindRefused(AgentlogError):
    """A regenerate, an edit or `from_message_id` that cannot go back where it asks; `code`
    says why (`message_not_found`, `message_off_branch`, `not_a_turn`, ...)."""

    def __init__(self, http_status: int, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.details = details


class ForkPointOutOfRange(AgentlogError):
    """A fork's `at_seq` is not a seq of the source's log."""

    code = "invalid_at_seq"
    http_status = 422

    def __init__(self, session_id: str, at_seq: int, head: int) -> None:
        super().__init__(
            f"at_seq {at_seq} is not a seq of session {session_id!r}: fork at 1 to {head}"
        )
        self.details = {"session_id": session_id, "at_seq": at_seq, "head": head}


class ForkInsideRun(AgentlogError):
    """A fork point between a run's start and its end: the fork would hold a run that no
    process drives. Fork before it started, or once it ended."""

    code = "fork_inside_run"
    http_status = 409

    def __init__(
        self,
        session_id: str,
        at_seq: int,
        run_id: str,
        *,
        started_seq: int,
        ended_seq: int | None,
    ) -> None:
        where = f"at seq {started_seq - 1} or before"
        if ended_seq is not None:
            where += f", or at seq {ended_seq} (where it ended) or after"
        else:
            where += " (it has not ended yet)"
        super().__init__(
            f"seq {at_seq} of session {session_id!r} is inside run {run_id!r} "
            f"(started at seq {started_seq}): fork {where}"
        )
        self.details = {
            "session_id": session_id,
            "at_seq": at_seq,
            "run_id": run_id,
            "run_started_seq": started_seq,
            "run_ended_seq": ended_seq,
            "fork_before": started_seq - 1,
            "fork_from": ended_seq,
        }


class ForkApprovalPending(AgentlogError):
    """At the fork point a tool call waits on a person's approval; its answer would continue
    a turn the fork did not run."""

    code = "fork_approval_pending"
    http_status = 409

    def __init__(
        self, session_id: str, at_seq: int, approval_ids: list[str], *, before_seq: int | None
    ) -> None:
        before = f"at seq {before_seq} or before, or " if before_seq is not None else ""
        super().__init__(
            f"at seq {at_seq} session {session_id!r} waits for tool approval "
            f"{', '.join(approval_ids)}: fork {before}at a seq after the call ended"
        )
        self.details = {
            "session_id": session_id,
            "at_seq": at_seq,
            "approval_ids": approval_ids,
            "fork_before": before_seq,
        }


class UnknownAgent(AgentlogError):
    """A session asked for an agent this server does not host; nothing was written."""

    code = "unknown_agent"
    http_status = 422

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"no agent named {name!r} on this server (it hosts: {', '.join(known) or 'none'})"
        )
        self.details = {"agent": name, "known": known}


class AttachmentRefused(AgentlogError):
    """A file sent with a prompt is unacceptable (not a data URL, a media type not allowed,
    over a size limit, unknown); nothing was written. `http_status`: 400, 413 or 415."""

    def __init__(self, http_status: int, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.details = details
