"""One run's assistant message as a Vercel AI SDK UI message stream (npm `ai` 7.x): pure code.

`RunStreamEncoder(run_id)` is fed a session's events in seq order (`chunks_for`) and returns the
chunks that tell an AI SDK client (`useChat`, `readUIMessageStream`) what changed in the run's
assistant message; `finish(run_active=...)` closes the stream when the caller stops following the
log. `run_chunks(events, run_id)` replays a whole run, as `GET /stream` does on resume. The client
message these chunks build equals the run's message from `agentlog.projections.ui_messages` (parts,
states, inputs, outputs and metadata): tests/unit/test_ui_stream.py proves it over random logs
with a Python mirror of the client, tests/e2e/test_ai_sdk_client.py with the real `ai` package.

Which events are the run's: the ui_messages fold's own rules. An event naming the run (`run_id`),
an event with no run id while the run is the open one, a `custom` / `agent_error` naming a run not
(yet) started while this one is open, and a tool call's result, whatever run it names, when the
call is one of this run's (tool call ids are unique in a session: the model API makes them).
Events before the run's `run_started` only teach the encoder which runs exist, so feeding it the
session from seq 1 is exact, and feeding it from the run's `run_started` is enough unless later
events name earlier runs.

Chunks, per event:
- `run_started` -> `start{messageId: run id, messageMetadata: {status, agent, startedAt}}`;
  `agent_initialized` with a model -> `message-metadata{model}`. The client merges metadata, so
  it ends equal to the projection's.
- `step_started` -> `start-step` (after `finish-step` if the last step was not finished);
  `step_finished` -> `finish-step`. Text and reasoning stay open across steps, as in the fold:
  a block ends at its completion or at the run's end, never at its step's end.
- deltas: `text-start{id}` at a block's first delta, then `text-delta{id, delta}` (reasoning the
  same); the id is `<message_id>:<block_index>`. A delta for a finished block is dropped, as the
  fold drops it. A completion without deltas: start, delta (the whole text), end. A completion
  after deltas: the remainder as one delta when the text extends what was streamed, then end.
  When it does not (the completion rewrote the block, or a second completion changed a finished
  block), the client cannot edit a part in place, so the encoder sends `reset-step` (the client
  drops the current step's parts) and sends the step's parts again as the fold now has them.
  That is exact when the block is in the current step and no part of an earlier step is still
  open (a reset forgets every open part); otherwise the block just ends and the client keeps the
  streamed text (a reload shows the completion). The Claude CLI completes a block within its own
  step, before the next one starts.
- tool calls: `tool_input_delta` -> `tool-input-start{toolCallId, toolName, dynamic?}` then
  `tool-input-delta{toolCallId, inputTextDelta}`; `tool_call_started` -> `tool-input-available
  {toolCallId, toolName, input, dynamic?}`. `dynamic: true` for `mcp__` tools, which the fold
  shows as `dynamic-tool` parts. Results: `tool-output-available{output}`,
  `tool-output-error{errorText}`, and a denial as `tool-approval-request{approvalId}` +
  `tool-approval-response{approved: false, reason}` + `tool-output-denied`: `tool-output-denied`
  alone only moves the state, while the AI SDK's `output-denied` part carries `approval: {id,
  approved: false, reason}` (the fold's shape), which only the approval chunks build; the
  approval id is the tool call id. A call that ends while its input still streams first gets
  `tool-input-available{input: null}`, the fold's input for it. Only a waiting call moves, once.
  The client updates a call's input only within the current step (the parts after the last
  `step-start`). So when a step starts while a call's input still streams (its step was cut
  off), `tool-input-start` is sent again first, which clears the client's partial input to the
  fold's none; and a call whose input completes after the next step began stays streaming on
  the client, and shows no input if it then gets a result (the fold: `null`). The Claude CLI
  completes a tool call's input within its step.
- approvals: `tool_approval_requested` -> `tool-approval-request{approvalId, toolCallId}` (the
  input first, when it still streamed); `tool_approval_responded` -> `tool-approval-response
  {approvalId, approved, reason?}`; a refused answered call then ends with `tool-output-denied`
  alone (the client part keeps its `approval`), an approved one with `tool-output-available`.
- a continuation run (`run_started` with `continues_run_id`): its stream continues the earlier
  run's message, as `useChat` does after `addToolApprovalResponse`: `start{messageId: <the
  continued run>, messageMetadata}`, then only the continuation's chunks; the calls it settles
  were learnt, silently, from the earlier events. `RunStreamEncoder(C, earlier=[R])` replays
  R's whole message first instead (a resumed stream rebuilds the message from empty): R's end
  becomes `message-metadata`, and C's start another.
- subagents: a step with `parent_tool_call_id` sends no `start-step` and its `step_finished` no
  `finish-step`; a subagent's text, reasoning and tool parts carry the parent call in their
  start chunks' `providerMetadata` (`{"agentlog": {"parentToolCallId": P}}`), which the client
  keeps on the part as the fold shows it.
- `custom(name, data)` -> `data-<name>{data}`; `agent_error` -> `data-agent-error{data}`. Never
  an `error` chunk mid-run: useChat stops reading a stream at its first `error`.

Closing (a terminal event, a newer run starting, or `finish(run_active=False)`): every open block
ends; every waiting call fails with `INTERRUPTED`, a call whose input was still streaming after a
`tool-input-start` again (which clears the client's partial input: the fold shows none); an open
step finishes. Then, by how the run ended:
- `run_finished`: `finish{finishReason, messageMetadata}`, the reason from the stop reason
  (end_turn -> stop, max_tokens -> length, tool_use -> tool-calls, refusal -> content-filter).
- failed (`run_failed`, or `run_finished` with `is_error`): `finish{finishReason: "error",
  messageMetadata}` then `error{errorText}`, last: useChat stops at `error` and shows it as
  `chat.error`, so anything after it would be lost.
- `run_cancelled`: `message-metadata` then `abort{reason}`, which is how the AI SDK's own
  server ends a stream it stopped (no `finish`).
- `run_abandoned`, or a newer run starting while this one is open:
  `finish{finishReason: "interrupted", messageMetadata}`; useChat then won't continue the
  message on its own. Except a `run_abandoned` naming the run that continues the turn after
  its server died (`continued_by`, the next event): then only `message-metadata`, and the
  stream goes on with that run's chunks, as one message, to its end.
- `finish(run_active=False)` with no terminal event (the log stops: the process died):
  `finish{finishReason: "interrupted", messageMetadata: {status: "running"}}`: the fold still
  says running. Every ending carries metadata: a chunk with metadata makes useChat publish
  the message's last state, which a trailing `start-step` alone does not.
  `finish(run_active=True)` returns nothing: the run goes on, and a resumed stream replays it.
After the close the encoder emits nothing more, and `closed` is True: send `DONE` then.

After a rewind (regenerate, edit) nothing changes here: the run that answers from the earlier
point is a new run with its own assistant message (`start{messageId: its run id}`), and a
`conversation_rewound` is not one of any run's events. GET /stream replays the active run, which
is always on the current branch (a rewind's run is the newest); a client still showing the
branch set aside gets it as a new message after those, and reloads GET /messages to drop them
(the stream protocol has no chunk that removes a message).

`run_chunks` replays with the close held back to the end of the log: a result written after the
run's terminal event (a late safety net) is shown before the close, where the fold shows it too.
A live stream closes at the terminal event instead. The SSE framing is `encode_sse(chunk)` per
chunk and `DONE` last.

The modules: `encoder` (`RunStreamEncoder`) keeps the message as `parts` and answers each event
with `chunks`, ends a run with `endings`; `replay` (`run_chunks`, `continued_runs`); `sse`.
"""

from agentlog.projections.ui_stream.chunks import Chunk
from agentlog.projections.ui_stream.encoder import RunStreamEncoder
from agentlog.projections.ui_stream.endings import FINISH_REASONS
from agentlog.projections.ui_stream.replay import continued_runs, run_chunks
from agentlog.projections.ui_stream.sse import DONE, encode_sse

__all__ = [
    "DONE",
    "FINISH_REASONS",
    "Chunk",
    "RunStreamEncoder",
    "continued_runs",
    "encode_sse",
    "run_chunks",
]
