"""The log's vocabulary: every fact agentlog records about a session, as tagged msgspec Structs.

Schema evolution rules (also in docs/events.md):
- a new field always gets a default, so events written before it still decode;
- a tag is never renamed and a field never changes type: add a new event instead;
- unknown fields are ignored on decode, so an older reader can read a newer log.

SDK and wire types never appear here: the agent runner translates them at the edge.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every event; `run_id` is set on events that belong to an agent run."""

    run_id: str | None = None


# -- session ---------------------------------------------------------------------------------


class SessionCreated(Event, frozen=True, kw_only=True, tag="session_created"):
    """The session exists; always seq 1 of its log."""

    title: str | None = None
    metadata: dict[str, Any] = {}
    # The agent the session's runs use (a name of AGENTLOG_AGENTS, "default" or "demo"); None
    # on sessions created before agents had names: the server's default agent.
    agent: str | None = None


class SessionDeleted(Event, frozen=True, kw_only=True, tag="session_deleted"):
    """The session was deleted: its tombstone, and the only event of its log left. It comes
    right after the seq its last event had, so live followers receive it; it holds no content."""

    reason: str = "requested"  # "requested" (DELETE, agentlog delete) or "retention"
    # How many events were removed (their positions are gaps in the global feed: verify counts).
    events_removed: int = 0


class CustomEventRecorded(Event, frozen=True, kw_only=True, tag="custom"):
    """An external writer's own event (a client's data, a job's progress)."""

    name: str
    data: Any = None


# -- runs ------------------------------------------------------------------------------------


class AttachedFile(msgspec.Struct, frozen=True, kw_only=True):
    """A file sent with a prompt, by reference: its bytes are stored once per session under
    their sha256 (agentlog.infra.store.attachments), never in the log."""

    sha256: str
    media_type: str
    size: int
    filename: str | None = None


class RunStarted(Event, frozen=True, kw_only=True, tag="run_started"):
    """A prompt went in; the agent turn proceeds in the background."""

    prompt: str
    agent: str = "scripted"
    # Set when this run continues an earlier one after its tool approvals were answered: it
    # has no prompt of its own; the agent picks up the deferred call where that run stopped.
    continues_run_id: str | None = None
    # The CLI session this run resumes (or starts) and mirrors into: the agent's context. The
    # same across the runs of one branch; a rewind or a fork starts a new one
    # (infra/agent/transcripts/branching.py). None on runs recorded before branches existed: those
    # used
    # `agent_session_id(session_id)`.
    agent_session: str | None = None
    # The id the client gave the prompt's user message (the AI SDK Chat names the messages it
    # creates itself): GET /messages shows that message under it. None: `<run id>:user`
    # (runs started without one, and every run recorded before clients could name it).
    user_message_id: str | None = None
    # Which agent ran the turn (its name on the server) and which version of it: a hash of
    # its options' serialisable parts (infra/agent/agents/fingerprint.py). None on runs
    # recorded before agents had names, and `agent_fingerprint` on the built-in demo agent.
    agent_name: str | None = None
    agent_fingerprint: str | None = None
    # Files the user sent with the prompt (images, PDFs, text), in the order sent; the model
    # received them as content blocks after the prompt's text.
    files: list[AttachedFile] = []
    # Set when this run answers a queued prompt: the seq of its `prompt_queued`
    # (domain/rules/prompt_queue.py). None: the prompt came with the start.
    queued_seq: int | None = None
    # Where the session's queue may still hold prompts no run has answered: no waiting
    # `prompt_queued` is before this seq. None: none is before this `run_started`.
    queue_from: int | None = None
    # Set (1, 2, ...) when this run continues the turn of `continues_run_id` because that
    # run's server died mid-turn: how many times in a row the turn was continued so. Its
    # `prompt` is then agentlog's continuation prompt, never a person's
    # (agentlog.domain.rules.crash_continuation).
    resumed_after_crash: int = 0


class PromptQueued(Event, frozen=True, kw_only=True, tag="prompt_queued"):
    """A prompt sent while a run was active or an approval waited: it waits in the log and
    starts a turn of its own once nothing runs or waits, in the order queued; the turn's
    `run_started` names it (`queued_seq`). It belongs to no run: `run_id` is None."""

    prompt: str
    # The client's id for the prompt's user message (as on `run_started`).
    user_message_id: str | None = None
    # Queued by an interrupt: the active run was cancelled to let it go next.
    interrupt: bool = False
    # Sent to steer the active run: handed to its agent at once, and off the queue once the
    # run records it delivered (`steering_delivered`); a run that ends first leaves it queued.
    steer: bool = False
    # Files sent with the prompt (as on `run_started`): the turn that answers it sends them.
    files: list[AttachedFile] = []


class SteeringDelivered(Event, frozen=True, kw_only=True, tag="steering_delivered"):
    """A steering prompt reached the running turn: the model request it went out with begins
    right after this event (the CLI added it at that step boundary). `queued_seq`: its
    `prompt_queued`, which this takes off the queue."""

    queued_seq: int
    prompt: str
    user_message_id: str | None = None


class QueueCleared(Event, frozen=True, kw_only=True, tag="queue_cleared"):
    """The prompts queued up to `through_seq` that no run had answered are dropped (a stop
    that asked for it): they never start a turn."""

    through_seq: int
    reason: str = "stopped"


class ConversationRewound(Event, frozen=True, kw_only=True, tag="conversation_rewound"):
    """The conversation goes back to `to_seq`: what the runs after it said is off the current
    branch (still in the log, shown by `inspect`; not by GET /messages or the agent's context).
    Always appended in one batch with the `run_started` of the run that answers from there."""

    to_seq: int  # the last seq kept on the current branch
    # The CLI session of the new branch (the following run_started carries it too).
    agent_session: str
    # What asked for it: "regenerate" (useChat's regenerate-message), "edit" (a POST whose
    # messages diverge from the log's), or "from_message" (POST /runs with from_message_id).
    trigger: str = "from_message"
    # The UI message the conversation was rewound to (regenerated, or edited from).
    message_id: str | None = None


class SessionForked(Event, frozen=True, kw_only=True, tag="session_forked"):
    """This session was forked from another: its events up to here are copies of the
    source's up to `at_seq` (with this session's own seqs)."""

    from_session_id: str
    at_seq: int
    agent_session: str  # the fork's own CLI session, a copy of the source's transcript


class AgentInitialized(Event, frozen=True, kw_only=True, tag="agent_initialized"):
    """The agent process reported its configuration (the CLI's `system/init`)."""

    agent_session_id: str | None = None
    model: str | None = None
    tools: list[str] = []
    cwd: str | None = None


class AgentStatusReported(Event, frozen=True, kw_only=True, tag="agent_status"):
    """Any other system frame (status, api_retry, task_started, ...), kept whole."""

    subtype: str
    data: dict[str, Any] = {}


class StepStarted(Event, frozen=True, kw_only=True, tag="step_started"):
    """The model began one API response (one assistant message id)."""

    message_id: str
    model: str | None = None
    parent_tool_call_id: str | None = None


class StepFinished(Event, frozen=True, kw_only=True, tag="step_finished"):
    """The model's API response ended."""

    message_id: str
    stop_reason: str | None = None
    usage: dict[str, Any] = {}
    # True when the response was cut off mid-stream (a model error) and its partial blocks
    # were never completed.
    abandoned: bool = False


class TextDelta(Event, frozen=True, kw_only=True, tag="text_delta"):
    """A streamed piece of assistant text (only with partial messages on)."""

    message_id: str
    block_index: int
    delta: str
    parent_tool_call_id: str | None = None


class TextCompleted(Event, frozen=True, kw_only=True, tag="text_completed"):
    """A whole assistant text block."""

    message_id: str
    block_index: int = 0
    text: str
    parent_tool_call_id: str | None = None


class ReasoningDelta(Event, frozen=True, kw_only=True, tag="reasoning_delta"):
    """A streamed piece of the model's thinking."""

    message_id: str
    block_index: int
    delta: str
    parent_tool_call_id: str | None = None


class ReasoningCompleted(Event, frozen=True, kw_only=True, tag="reasoning_completed"):
    """A whole thinking block, with the signature the API needs to accept it back."""

    message_id: str
    block_index: int = 0
    text: str
    signature: str = ""
    parent_tool_call_id: str | None = None


class ToolInputDelta(Event, frozen=True, kw_only=True, tag="tool_input_delta"):
    """A streamed piece of a tool call's JSON input."""

    message_id: str
    block_index: int
    tool_call_id: str
    tool_name: str
    delta: str
    parent_tool_call_id: str | None = None


class ToolCallStarted(Event, frozen=True, kw_only=True, tag="tool_call_started"):
    """The model asked for a tool; its complete input is available."""

    tool_call_id: str
    tool_name: str
    input: Any = None
    message_id: str | None = None
    parent_tool_call_id: str | None = None


class ToolCallSucceeded(Event, frozen=True, kw_only=True, tag="tool_call_succeeded"):
    """A tool call's output is available. Recorded once per call, whoever reports it."""

    tool_call_id: str
    output: Any = None
    # "agent" (the transcript), "hook" (PostToolUse), "external" (POST .../events)
    source: str = "agent"
    # The tool's own structured result when it has one (e.g. Bash stdout/stderr).
    structured_output: Any = None


class ToolCallFailed(Event, frozen=True, kw_only=True, tag="tool_call_failed"):
    """A tool call ended in an error (including "interrupted" from the safety net)."""

    tool_call_id: str
    error_text: str
    source: str = "agent"
    # True when the call was cut off (cancel, crash, shutdown) rather than failing by itself.
    interrupted: bool = False


class ToolCallDenied(Event, frozen=True, kw_only=True, tag="tool_call_denied"):
    """A policy refused the tool call before it ran; the model was told why."""

    tool_call_id: str
    reason: str


class ToolApprovalRequested(Event, frozen=True, kw_only=True, tag="tool_approval_requested"):
    """A tool call needs a person's yes before it runs; it waits, durably, in the log."""

    approval_id: str
    tool_call_id: str
    tool_name: str
    input: Any = None
    reason: str | None = None


class ToolApprovalResponded(Event, frozen=True, kw_only=True, tag="tool_approval_responded"):
    """The answer to an approval request: recorded once; the call then runs or is refused."""

    approval_id: str
    tool_call_id: str
    approved: bool
    reason: str | None = None
    # Who answered, when a scoped token names them.
    responder: str | None = None


class AgentErrorReported(Event, frozen=True, kw_only=True, tag="agent_error"):
    """The agent or model reported an error that did not (yet) end the run."""

    kind: str
    message: str
    status: int | None = None


class ToolCallRefused(Event, frozen=True, kw_only=True, tag="tool_call_refused"):
    """The CLI's stream asked the server to run one of its in-process tools, and the server
    refused: the run's policy denies the tool, or no PreToolUse decision of this run let the
    call through (a frame forged by a tool, not asked for by the model). It never ran."""

    tool_name: str
    tool_call_id: str | None = None
    input: Any = None
    reason: str


class ModelCallMetered(Event, frozen=True, kw_only=True, tag="model_call_metered"):
    """One call the model gateway forwarded for the run, measured by the gateway (what the
    model answered), not by the CLI: the run's usage and cost are the sum of these. Also a
    call it refused (`refused` says why, `status` 403, nothing spent)."""

    endpoint: str  # "messages" or "count_tokens"; for a refused call, its method and path
    model: str | None = None  # the model that answered (else the one asked for)
    status: int
    usage: dict[str, Any] = {}
    cost_usd: float = 0.0
    refused: str | None = None


class EgressRefused(Event, frozen=True, kw_only=True, tag="egress_refused"):
    """A tool (or the CLI) asked the run's egress proxy for a host its agent does not name
    (AGENTLOG_AGENT_EGRESS); the connection was refused."""

    host: str
    port: int
    reason: str


class HeartbeatRecorded(Event, frozen=True, kw_only=True, tag="heartbeat"):
    """The run is alive; written on a timer, also while a tool runs for minutes."""


class RunFinished(Event, frozen=True, kw_only=True, tag="run_finished"):
    """The turn ended with a result."""

    result: str | None = None
    stop_reason: str | None = None
    num_turns: int = 0
    duration_ms: int = 0
    duration_api_ms: int = 0
    total_cost_usd: float | None = None
    usage: dict[str, Any] = {}
    agent_session_id: str | None = None
    is_error: bool = False
    subtype: str | None = None
    terminal_reason: str | None = None
    errors: list[str] = []
    api_error_status: int | None = None
    permission_denials: list[dict[str, Any]] = []
    # The tool call a PreToolUse hook deferred (the turn stopped to wait for an approval).
    deferred_tool_call_id: str | None = None
    # Per model (the main agent's and every subagent's): tokens and `costUSD`, as reported.
    model_usage: dict[str, Any] = {}
    # What the CLI's result claimed the turn cost, when the usage above was measured by the
    # model gateway instead (the CLI's stream is not trusted for it).
    reported_cost_usd: float | None = None


class RunFailed(Event, frozen=True, kw_only=True, tag="run_failed"):
    """The turn ended in an error (model, SDK, CLI crash)."""

    error: str
    terminal_reason: str | None = None
    # What the model gateway measured before the turn failed (sandboxed runs): the calls
    # were made, and paid for, even though no result came.
    total_cost_usd: float | None = None
    usage: dict[str, Any] = {}
    model_usage: dict[str, Any] = {}


class RunCancelled(Event, frozen=True, kw_only=True, tag="run_cancelled"):
    """The turn was interrupted on request or by server shutdown."""

    reason: str = "cancelled"
    # What the interrupted turn had cost, when the agent still reported a result.
    total_cost_usd: float | None = None
    usage: dict[str, Any] = {}
    model_usage: dict[str, Any] = {}


class RunAbandoned(Event, frozen=True, kw_only=True, tag="run_abandoned"):
    """The process running the turn died; a later command found its lock expired."""

    reason: str = "owner lost"
    # The run that continues this turn, started in the same append (its server died mid-turn:
    # agentlog.domain.rules.crash_continuation); None when the turn ended here.
    continued_by: str | None = None


SessionEvent = (
    SessionCreated
    | SessionDeleted
    | CustomEventRecorded
    | RunStarted
    | PromptQueued
    | QueueCleared
    | SteeringDelivered
    | ConversationRewound
    | SessionForked
    | AgentInitialized
    | AgentStatusReported
    | StepStarted
    | StepFinished
    | TextDelta
    | TextCompleted
    | ReasoningDelta
    | ReasoningCompleted
    | ToolInputDelta
    | ToolCallStarted
    | ToolCallSucceeded
    | ToolCallFailed
    | ToolCallDenied
    | ToolApprovalRequested
    | ToolApprovalResponded
    | AgentErrorReported
    | ToolCallRefused
    | ModelCallMetered
    | EgressRefused
    | HeartbeatRecorded
    | RunFinished
    | RunFailed
    | RunCancelled
    | RunAbandoned
)

RUN_TERMINAL_TYPES = (RunFinished, RunFailed, RunCancelled, RunAbandoned)
TOOL_TERMINAL_TYPES = (ToolCallSucceeded, ToolCallFailed, ToolCallDenied)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.__struct_config__.tag: cls for cls in SessionEvent.__args__
}


# gc=False: a record refers to its event, never back, so it is never part of a cycle; untracked,
# the tens of thousands a long session's read makes do not feed the garbage collector's full
# passes, which stop the event loop for as long as they scan (issue 19: 0.1-0.3 s per pass
# during a 60,000-event fork).
class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An event as the log holds it: the store assigned `seq`, `position` and `time`."""

    session_id: str
    seq: int
    position: int
    time: datetime
    event: SessionEvent

    @property
    def type(self) -> str:
        return type_of(self.event)

    @property
    def run_id(self) -> str | None:
        return self.event.run_id


_tags: dict[type, str] = {}


def type_of(event: Event) -> str:
    """The event's tag, as stored in the log's `topic` column."""
    # Looked up once per event class: this is on every append's path.
    tag = _tags.get(type(event))
    if tag is None:
        found = event.__struct_config__.tag
        assert isinstance(found, str)
        tag = _tags[type(event)] = found
    return tag


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(SessionEvent)


def encode_event(event: Event) -> bytes:
    """The event's stored form: compact JSON with its `type` tag."""
    return _encoder.encode(event)


def decode_event(data: bytes | str) -> SessionEvent:
    """Decode a stored event; unknown fields are ignored (schema evolution)."""
    event: SessionEvent = _decoder.decode(data)
    return event


def encode_recorded(recorded: RecordedEvent, data: bytes | None = None) -> bytes:
    """One flat JSON object: envelope fields plus the event's own fields at the top level.

    `data` is the event's stored JSON when the caller has it, so an event read from the log is
    never re-encoded: the envelope is spliced in front of the stored bytes.
    """
    body = data if data is not None else encode_event(recorded.event)
    head = _encoder.encode(
        {
            "seq": recorded.seq,
            "position": recorded.position,
            "session_id": recorded.session_id,
            "time": recorded.time,
        }
    )
    if body == b"{}":
        return head
    return head[:-1] + b"," + body[1:]


def utc_now() -> datetime:
    return datetime.now(UTC)
