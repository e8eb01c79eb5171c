"""A session's conversation as Vercel AI SDK `UIMessage`s: a pure fold over its log.

`fold(events)` / `apply(state, recorded)` build a `ConversationState` (msgspec Structs, JSON
serialisable, stored per session with its checkpoint `last_seq`); `to_ui_messages(state,
run_active=...)` reads it as `[{"id", "role", "parts", "metadata"?}]`.

The modules: `state` (the stored Structs), `fold` (`apply`, `fold`) over a `builder` (one fold
call's thawed messages and parts), the handlers by what they change (`runs`, `rewinds`,
`text_parts`, `tool_parts`, `approvals`, `data_parts`), and `read` (`to_ui_messages`).

Mapping rules (R is the event's run id; an event with no run id belongs to the open run):
- `session_created`, `step_finished`, `heartbeat`, `agent_status`: nothing visible.
- `session_deleted` (the tombstone): no messages.
- `conversation_rewound(to_seq=T)` (regenerate, edit, `from_message_id`): only the current
  branch is shown (`agentlog.domain.rules.branches.current_branch`): every message created after T
  (each
  message keeps the seq of the event that created it: its run's `run_started`, or the
  `custom`) is dropped, and a run that a dropped run's start had closed as "abandoned" is open
  again, as it was (the branch no longer holds that start). The runner only rewinds to just
  before a `run_started` and after every earlier run ended, so no event after T touches a
  kept message, and this equals folding the current branch alone (property-tested).
- `run_started(R, prompt, user_message_id?, files?)`: a user message `{id: user_message_id
  (the client's own id for it) or "R:user", parts: [file parts..., text prompt]}` (a file
  part `{type: "file", mediaType, url, filename?}` per file, `url` the route serving it; no
  text part for files sent without a word), then the run's
  one assistant message `{id: R, parts: []}` with metadata `{status: "running", agent,
  startedAt}`. A second `run_started` for a known R changes nothing. If another run was still
  open (its process died without a terminal event), that run is closed as "abandoned".
- `agent_initialized`: sets the run's metadata `model`.
- `step_started`: appends `{"type": "step-start"}`.
- `text_delta` / `reasoning_delta`: append to the part for (message_id, block_index), creating
  it with state "streaming"; a delta for a part already "done" is ignored.
  `text_completed` / `reasoning_completed`: set that part's whole text, state "done" (creating
  it when no delta came).
- Tool parts are typed `tool-<name>`, except MCP tools (names starting with `mcp__`), which
  are `dynamic-tool` with `toolName`: MCP tools are discovered at run time, which is what the
  AI SDK's dynamic tool parts are for; built-in tools are a fixed, typeable set.
- `tool_input_delta`: a tool part in "input-streaming"; the raw JSON text is kept in the state
  (`ToolPart.input_text`) but the UI part has no `input` (undefined) while it streams, since
  the AI SDK expects a partial *object* there, not text.
  `tool_call_started`: the part becomes (or is created) "input-available" with `input`; a
  second start for the same id changes nothing.
- `tool_call_succeeded` -> "output-available" + `output`; `tool_call_failed` -> "output-error"
  + `errorText`; `tool_call_denied` -> "output-denied" + `approval: {id: toolCallId, approved:
  false, reason}` (the AI SDK's shape for a refused call). Only a waiting part (input-streaming
  or input-available) moves: a terminal event for an unknown id, or a second one, changes
  nothing. A terminal event finds its call in any run, so a late safety-net result lands.
- approvals: `tool_approval_requested` moves a waiting part to "approval-requested" with
  `approval: {id}`; `tool_approval_responded` moves it to "approval-responded" with `approval:
  {id, approved, reason?}`. The call's end then moves it on as above, keeping `approval`; a
  refusal (`tool_call_denied`) of an answered call is "output-denied" with the person's
  `approval`. These are the AI SDK 7 shapes `addToolApprovalResponse` and its stream build.
- `run_started` with `continues_run_id` (the turn that goes on after an approval, or after
  its server died: `resumed_after_crash`, whose prompt is agentlog's, not shown) adds no
  message: its events land in the continued run's assistant message, whose metadata status
  goes back to "running", as the AI SDK client continues that same message. A run that ends
  deferring a call (`run_finished` with `deferred_tool_call_id`) is "awaiting_approval".
- Subagents (the `Agent`/Task tool): events with `parent_tool_call_id` P are the subagent's
  that call P started. Their text, reasoning and tool parts go in the run's message like any
  other, each carrying P as AI SDK provider metadata, `providerMetadata` on text and reasoning
  parts and `callProviderMetadata` on tool parts: `{"agentlog": {"parentToolCallId": P}}`
  (the shape the AI SDK client itself builds from the stream's chunks). A subagent's steps add
  no `step-start`: they are not steps of the turn. A UI nests them under P's part; the
  subagent's final report is P's output. A cancelled or crashed subagent is resolved like any
  tool: P and the subagent's own waiting calls end as interrupted (the safety net, hydration).
- `agent_error`: a `{"type": "data-agent-error", "data": {kind, message, status?}}` part where
  it happened. Not a text part: the AI SDK would send text back to the model as if the
  assistant had said it, while data parts are for the UI only.
- `custom(name, data)`: a `{"type": "data-<name>", "data": data}` part on the run named by its
  run id, else on the open run; with neither, a standalone assistant message `custom:<seq>`.
  `agent_error` outside any run is shown the same way.
- `steering_delivered`: a `{"type": "steering-message", "id", "parts": [{"type": "text",
  "text"}]}` part on the run's message where it was delivered, before the step that received
  it (the AI SDK 7 steering part); `id` is the client's message id, else `steer:<queued seq>`.
- `run_finished` / `run_failed` / `run_cancelled` / `run_abandoned`: the run's metadata
  `status` becomes "finished" / "failed" / "cancelled" / "abandoned" (a finished run with
  `is_error` is "failed"), with `endedAt`, `usage`, `totalCostUsd`, `durationMs`, `numTurns`,
  `stopReason`, `error` when known, and `cost` (tokens summed over the models the run used,
  subagents included, and dollars; `scripted: true` and 0 for the scripted model, see
  projections/usage.py). Only the first terminal event of a run counts.
- Any other event that names no known run (and arrives with no run open) changes only
  `last_seq`.

Hydration (`to_ui_messages` only; the state is never touched): a run that is not the open run,
or the open run when `run_active` is False, cannot deliver anything more. Its tool parts still
waiting are shown as "output-error" with `errorText` INTERRUPTED, and its "streaming" text and
reasoning parts as "done". A part waiting on an approval ("approval-requested", or
"approval-responded" until the next turn acts on it) is not dangling: it is shown as it is,
whether or not any process is alive. output-error, not an empty output-available: it is what
happened, the model is told the same by the safety net, and the AI SDK renders it as finished.

Cost: `apply` never mutates its input. It thaws only what an event touches (the message list
by reference, one message's parts) into private builders and freezes them into a new state,
so one event costs O(messages + parts of one message) pointer copies, and `fold` pays that
once per call, not per event: feed it batches.
"""

from agentlog.projections.ui_messages.builder import OutsideWindow
from agentlog.projections.ui_messages.changes import EVERYTHING, MessageChanges
from agentlog.projections.ui_messages.fold import apply, fold, fold_changes
from agentlog.projections.ui_messages.read import INTERRUPTED, subagent_metadata, to_ui_messages
from agentlog.projections.ui_messages.runs import user_message_id
from agentlog.projections.ui_messages.state import (
    EMPTY,
    PARKED,
    WAITING,
    ConversationState,
    DataPart,
    FilePart,
    Message,
    Part,
    ReasoningPart,
    RunInfo,
    StepStartPart,
    TextPart,
    ToolPart,
)

__all__ = [
    "EMPTY",
    "EVERYTHING",
    "INTERRUPTED",
    "PARKED",
    "WAITING",
    "ConversationState",
    "DataPart",
    "FilePart",
    "Message",
    "MessageChanges",
    "OutsideWindow",
    "Part",
    "ReasoningPart",
    "RunInfo",
    "StepStartPart",
    "TextPart",
    "ToolPart",
    "apply",
    "fold",
    "fold_changes",
    "subagent_metadata",
    "to_ui_messages",
    "user_message_id",
]
