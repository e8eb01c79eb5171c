"""The scripted model: its scenarios as pure functions, its wire format, and the real CLI on it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    ClaudeSDKError,
    HookMatcher,
    ResultMessage,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    create_sdk_mcp_server,
    tool,
)

from agentlog.infra.agent.offline.scenarios import (
    DEMO_SHELL_COMMAND,
    BrokenStream,
    HttpError,
    Message,
    Text,
    Thinking,
    ToolCall,
    choose_scenario,
    chunks,
    read_turn,
    respond,
)
from agentlog.infra.agent.offline.scripted_model import ScriptedModel

# -- scenarios, as pure functions -----------------------------------------------------------------

REMINDER = "<system-reminder>\nToday's date is 2026-11-21.\n</system-reminder>"


def user(*texts: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": t} for t in texts]}


def tool_round(
    calls: list[tuple[str, str, dict[str, Any]]], results: list[tuple[str, Any, bool]]
) -> list[dict[str, Any]]:
    """An assistant message with tool_use blocks and the user message with their results."""
    assistant = {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": i, "name": name, "input": args} for i, name, args in calls
        ],
    }
    results_message = {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": i, "content": content, "is_error": is_error}
            for i, content, is_error in results
        ],
    }
    return [assistant, results_message]


@pytest.mark.parametrize(
    ("prompt", "scenario"),
    [
        ("Why is the sky blue? Answer in one paragraph.", "text"),
        ("Add 2 and 3 and read /definitely/missing.txt", "parallel-tools"),
        ("Run the slow operation and tell me when it is done.", "long-tool"),
        ("Run `echo hello`, which should be denied.", "denied-tool"),
        ("Run `echo hello` in the shell.", "bash"),
        ("Pretend the model is overloaded.", "model-error"),
        ("[scenario:bash] why is the sky blue?", "bash"),
        ("[scenario:Model-Error]Hello", "model-error"),
    ],
)
def test_picks_the_scenario_from_the_prompt(prompt: str, scenario: str) -> None:
    assert choose_scenario(prompt)[0] == scenario


def test_an_override_tag_is_dropped_from_the_prompt() -> None:
    assert choose_scenario("[scenario:text] Tell me about Hamlet.") == (
        "text",
        "Tell me about Hamlet.",
    )


def test_the_prompt_skips_reminders_and_interrupt_markers() -> None:
    messages = [
        user(REMINDER, "Remember the number 42."),
        {"role": "assistant", "content": [{"type": "text", "text": "Got it."}]},
        user("[Request interrupted by user for tool use]", "What number?", REMINDER),
    ]
    turn = read_turn(messages)
    assert turn.prompt == "What number?"
    assert turn.earlier_prompts == ("Remember the number 42.",)
    assert turn.rounds == 0


def test_tool_results_are_matched_to_their_calls_and_lose_reminders() -> None:
    messages = [
        user("Add 2 and 3 and read /x"),
        *tool_round(
            [("t1", "mcp__demo__add", {"a": 2, "b": 3}), ("t2", "Read", {"file_path": "/x"})],
            [("t2", "File does not exist.", True), ("t1", [{"type": "text", "text": "5"}], False)],
        ),
    ]
    messages[-1]["content"][0]["content"] += "\n\n" + REMINDER
    turn = read_turn(messages)
    assert turn.rounds == 1
    assert [(o.name, o.content, o.is_error) for o in turn.outcomes] == [
        ("Read", "File does not exist.", True),
        ("mcp__demo__add", "5", False),
    ]


def test_text_thinks_then_answers_on_topic() -> None:
    reply = respond([user(REMINDER, "Why is the sky blue?")])
    assert isinstance(reply, Message)
    thinking, answer = reply.blocks
    assert isinstance(thinking, Thinking)
    assert isinstance(answer, Text)
    assert "Rayleigh" in answer.text
    assert reply.stop_reason == "end_turn"


def test_text_restates_any_other_question() -> None:
    reply = respond([user("tell me about event sourcing\nin detail")])
    assert isinstance(reply, Message)
    assert reply.blocks[-1].text.startswith(  # type: ignore[union-attr]
        "You asked: tell me about event sourcing in detail. Here is a short answer."
    )


def test_text_remembers_a_number_from_an_earlier_turn() -> None:
    messages = [
        user("Remember the number 42."),
        {"role": "assistant", "content": [{"type": "text", "text": "Got it."}]},
        user("What number did I ask you to remember?"),
    ]
    reply = respond(messages)
    assert isinstance(reply, Message)
    assert reply.blocks[-1] == Text("You asked me to remember the number 42.")


def test_parallel_tools_calls_both_tools_then_reports_their_results() -> None:
    prompt = user("Add 2 and 3 and read /definitely/missing.txt")
    first = respond([prompt])
    assert isinstance(first, Message)
    assert first.stop_reason == "tool_use"
    assert first.blocks[1:] == (
        ToolCall("mcp__demo__add", {"a": 2, "b": 3}),
        ToolCall("Read", {"file_path": "/definitely/missing.txt"}),
    )
    after = respond(
        [
            prompt,
            *tool_round(
                [
                    ("t1", "mcp__demo__add", {"a": 2, "b": 3}),
                    ("t2", "Read", {"file_path": "/definitely/missing.txt"}),
                ],
                [("t1", "5", False), ("t2", "File does not exist. Note: cwd is /w.", True)],
            ),
        ]
    )
    assert after == Message((Text("2 + 3 = 5, and /definitely/missing.txt does not exist."),))


def test_system_prompt_answers_with_every_text_block_verbatim() -> None:
    system = [{"type": "text", "text": "Billing header"}, {"type": "text", "text": "Be  terse.\n"}]
    reply = respond([user("[scenario:system-prompt] what were you told?")], system=system)
    assert reply == Message((Text("Billing header\n\nBe  terse.\n"),))
    long = respond([user("[scenario:system-prompt]")], system="x" * 9000)
    assert isinstance(long, Message) and long.blocks == (Text("x" * 8000),)


def test_a_call_tag_calls_that_tool_before_any_keyword_scenario() -> None:
    # "publish" and "add ... read" would pick scenarios of their own: the tag comes first.
    prompt = user('Add and read, then publish: [call:mcp__acme__lookup_order {"order_id": "A-1"}]')
    tools = frozenset({"mcp__acme__lookup_order", "Read"})
    first = respond([prompt], tools=tools)
    assert isinstance(first, Message)
    assert first.blocks[-1] == ToolCall("mcp__acme__lookup_order", {"order_id": "A-1"})
    calls = [("t1", "mcp__acme__lookup_order", {"order_id": "A-1"})]
    done = respond([prompt, *tool_round(calls, [("t1", "order A-1: shipped", False)])])
    assert done == Message((Text("mcp__acme__lookup_order returned: order A-1: shipped"),))
    failed = respond([prompt, *tool_round(calls, [("t1", "no such order", True)])])
    assert failed == Message((Text("mcp__acme__lookup_order failed: no such order"),))


def test_a_call_tag_may_leave_the_input_out_and_must_be_well_formed() -> None:
    assert respond([user("[call:Glob]")], tools=frozenset({"Glob"})) == Message(
        (Text("Calling Glob."), ToolCall("Glob", {}))
    )
    # Not a JSON object: not a call, so the keyword scenarios still apply.
    assert choose_scenario("[call:Read [1]] publish")[0] == "approval"
    assert respond([user("[call:Read [1]] hello")], tools=frozenset({"Read"})) != Message(
        (Text("Calling Read."), ToolCall("Read", {}))
    )


def test_long_tool_reads_the_duration_from_the_prompt() -> None:
    reply = respond([user("Run the slow operation for 7 seconds.")])
    assert isinstance(reply, Message)
    assert reply.blocks[-1] == ToolCall("mcp__demo__slow_op", {"seconds": 7})
    assert respond([user("Run the slow_op please")]).blocks[-1].input == {"seconds": 3}  # type: ignore[union-attr]


def test_bash_runs_the_fixed_demo_command_never_the_prompts_text() -> None:
    prompt = user("Run `touch /tmp/pwned` in bash")
    first = respond([prompt], tools=frozenset({"Bash", "Read"}))
    assert isinstance(first, Message)
    call = first.blocks[-1]
    assert isinstance(call, ToolCall)
    assert call.input["command"] == DEMO_SHELL_COMMAND
    assert "pwned" not in str(first)
    chosen = respond([prompt], tools=frozenset({"Bash"}), shell_command="uname -s")
    assert isinstance(chosen, Message) and chosen.blocks[-1].input["command"] == "uname -s"  # type: ignore[union-attr]
    after = respond(
        [prompt, *tool_round([("t1", "Bash", call.input)], [("t1", "a\nb\nc", False)])],
        tools=frozenset({"Bash"}),
    )
    assert isinstance(after, Message)
    assert after.blocks[0] == Text(
        f"I ran `{DEMO_SHELL_COMMAND}`; it printed 3 lines, ending with: c"
    )


def test_bash_says_shell_tools_are_off_when_the_cli_offers_no_bash() -> None:
    reply = respond([user("Run `id` in the shell")], tools=frozenset({"Read"}))
    assert isinstance(reply, Message)
    assert not any(isinstance(b, ToolCall) for b in reply.blocks)
    assert "not enabled" in reply.blocks[0].text  # type: ignore[union-attr]


def test_denied_tool_acknowledges_the_denial() -> None:
    prompt = user("[scenario:denied-tool] say hello")
    denial = "PreToolUse:Bash hook error: Bash is disabled by policy in this session."
    after = respond(
        [
            prompt,
            *tool_round([("t1", "Bash", {"command": "echo hello"})], [("t1", denial, True)]),
        ]
    )
    assert isinstance(after, Message)
    (answer,) = after.blocks
    assert isinstance(answer, Text)
    assert answer.text.startswith("I wasn't allowed to run `echo hello`")
    assert denial in answer.text


def test_model_error_breaks_the_stream_then_refuses_retries() -> None:
    messages = [user("[scenario:model-error] hi")]
    assert isinstance(respond(messages, attempt=0), BrokenStream)
    assert respond(messages, attempt=1) == HttpError(529, "overloaded_error", "Overloaded")


def test_a_structured_output_request_gets_json_that_fits_the_schema() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    prompt = user("<session>\n[scenario:model-error] Why is the sky blue?\n</session>\n\nWrite it.")
    reply = respond([prompt], output_schema=schema)
    assert isinstance(reply, Message)
    assert json.loads(reply.blocks[0].text) == {"title": "Why is the sky blue"}  # type: ignore[union-attr]


def test_an_unknown_scenario_says_which_exist() -> None:
    reply = respond([user("[scenario:nope] hi")])
    assert isinstance(reply, Message)
    assert "no scripted scenario named 'nope'" in reply.blocks[0].text  # type: ignore[union-attr]


def test_chunks_split_at_spaces_and_lose_nothing() -> None:
    text = "The sky looks blue because air molecules scatter sunlight."
    pieces = list(chunks(text, 16))
    assert "".join(pieces) == text
    assert len(pieces) > 2
    assert all(p.endswith(" ") for p in pieces[:-1])


# -- the wire format, over HTTP -------------------------------------------------------------------


def sse_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        data = json.loads(lines["data"])
        assert data["type"] == lines["event"]
        events.append((lines["event"], data))
    return events


async def post(model: ScriptedModel, path: str, body: dict[str, Any]) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as session:
        response = await session.post(f"{model.base_url}{path}", json=body)
        await response.read()
        return response


async def test_streams_a_complete_message_naming_itself_as_the_model(
    scripted_model: ScriptedModel,
) -> None:
    body = {
        "model": "claude-opus-4-1",
        "stream": True,
        "max_tokens": 100,
        "thinking": {"type": "adaptive"},
        "messages": [user("Why is the sky blue?")],
    }
    response = await post(scripted_model, "/v1/messages?beta=true", body)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(await response.text())
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["model"] == "agentlog-scripted"  # what answered, whatever was asked for
    assert start["id"].startswith("msg_01")
    assert start["usage"]["input_tokens"] > 0
    deltas = [data["delta"]["type"] for name, data in events if name == "content_block_delta"]
    assert deltas.count("thinking_delta") >= 2
    assert deltas.count("signature_delta") == 1
    assert deltas.count("text_delta") >= 5
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert scripted_model.requests == [body]


async def test_streams_tool_input_as_json_fragments(scripted_model: ScriptedModel) -> None:
    body = {"model": "m", "stream": True, "messages": [user("Add 2 and 3 and read /x/y.txt.")]}
    events = sse_events(await (await post(scripted_model, "/v1/messages", body)).text())
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert [b["type"] for b in starts] == ["text", "tool_use", "tool_use"]
    assert all(b["id"].startswith("toolu_01") and b["input"] == {} for b in starts[1:])
    inputs = {}
    for index in (1, 2):
        fragments = [
            data["delta"]["partial_json"]
            for name, data in events
            if name == "content_block_delta" and data["index"] == index
        ]
        assert len(fragments) > 2
        inputs[starts[index]["name"]] = json.loads("".join(fragments))
    assert inputs == {"mcp__demo__add": {"a": 2, "b": 3}, "Read": {"file_path": "/x/y.txt"}}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


async def test_answers_whole_messages_when_not_streaming(scripted_model: ScriptedModel) -> None:
    body = {
        "model": "m",
        "stream": False,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [user("Hello there")],
    }
    response = await post(scripted_model, "/v1/messages", body)
    message = await response.json()
    assert message["type"] == "message"
    assert [b["type"] for b in message["content"]] == ["thinking", "text"]
    assert message["content"][0]["signature"]
    assert message["stop_reason"] == "end_turn"


async def test_thinks_only_when_the_request_turns_thinking_on(
    scripted_model: ScriptedModel,
) -> None:
    body = {"model": "m", "stream": False, "messages": [user("Hello there")]}
    for thinking in (None, {"type": "disabled"}):
        sent = body if thinking is None else {**body, "thinking": thinking}
        message = await (await post(scripted_model, "/v1/messages", sent)).json()
        assert [b["type"] for b in message["content"]] == ["text"]


async def test_model_error_breaks_the_stream_then_answers_529(
    scripted_model: ScriptedModel,
) -> None:
    body = {"model": "m", "stream": True, "messages": [user("[scenario:model-error] Hamlet?")]}
    events = sse_events(await (await post(scripted_model, "/v1/messages", body)).text())
    assert events[-1] == (
        "error",
        {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
            "request_id": events[-1][1]["request_id"],
        },
    )
    assert "message_stop" not in [name for name, _ in events]
    retry = await post(scripted_model, "/v1/messages", {**body, "stream": False})
    assert retry.status == 529
    assert retry.headers["x-should-retry"] == "false"
    assert (await retry.json())["error"]["type"] == "overloaded_error"
    assert [c.answer for c in scripted_model.calls] == ["stream+error", "http 529"]


async def test_counts_tokens_and_refuses_unknown_paths(scripted_model: ScriptedModel) -> None:
    counted = await post(
        scripted_model, "/v1/messages/count_tokens", {"model": "m", "messages": [user("hi")]}
    )
    assert (await counted.json())["input_tokens"] > 0
    unknown = await post(scripted_model, "/v1/files", {})
    assert unknown.status == 404
    assert (await unknown.json())["error"]["type"] == "not_found_error"
    assert [(c.path, c.answer) for c in scripted_model.calls] == [
        ("/v1/messages/count_tokens", "count_tokens"),
        ("/v1/files", "not found"),
    ]
    assert scripted_model.requests == []


# -- the real bundled CLI against it --------------------------------------------------------------


@dataclass
class AgentTurn:
    """Everything the SDK yielded for one prompt, and the error it raised after, if any."""

    messages: list[Any] = field(default_factory=list)
    error: ClaudeSDKError | None = None
    seconds: float = 0.0

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]

    @property
    def result(self) -> ResultMessage:
        (result,) = self.of(ResultMessage)
        return result

    def blocks(self, kind: type) -> list[Any]:
        return [
            block
            for message in self.of(AssistantMessage) + self.of(UserMessage)
            if isinstance(message.content, list)
            for block in message.content
            if isinstance(block, kind)
        ]

    @property
    def texts(self) -> list[str]:
        return [block.text for block in self.blocks(TextBlock)]

    def deltas(self, kind: str) -> list[dict[str, Any]]:
        return [
            m.event["delta"]
            for m in self.of(StreamEvent)
            if m.event.get("type") == "content_block_delta" and m.event["delta"]["type"] == kind
        ]


async def run_turn(options: ClaudeAgentOptions, prompt: str) -> AgentTurn:
    """One prompt through the real CLI. An error the SDK raises after the result (the CLI exits
    non-zero on an error result) is kept, not raised."""
    turn = AgentTurn()
    started = time.monotonic()
    try:
        async with ClaudeSDKClient(options) as client:
            await client.query(prompt)
            async for message in client.receive_response():
                turn.messages.append(message)
    except ClaudeSDKError as error:
        if not turn.of(ResultMessage):
            raise
        turn.error = error
    turn.seconds = time.monotonic() - started
    return turn


def tool_results_in(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        block
        for message in request["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]


@tool("add", "Add two numbers", {"a": float, "b": float})
async def add(args: dict[str, Any]) -> dict[str, Any]:
    total = args["a"] + args["b"]
    text = str(int(total)) if float(total).is_integer() else str(total)
    return {"content": [{"type": "text", "text": text}]}


@tool("slow_op", "Wait, then report", {"seconds": float})
async def slow_op(args: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(args["seconds"])
    return {"content": [{"type": "text", "text": f"waited {args['seconds']} s"}]}


Options = Callable[..., ClaudeAgentOptions]


@pytest.mark.slow
async def test_cli_streams_thinking_and_text_to_a_successful_result(
    scripted_model: ScriptedModel, agent_options: Options
) -> None:
    turn = await run_turn(agent_options(), "Why is the sky blue? Answer in one paragraph.")

    (thinking,) = turn.blocks(ThinkingBlock)
    assert thinking.signature
    (answer,) = turn.texts
    assert "Rayleigh scattering" in answer
    assert len(turn.deltas("text_delta")) >= 5
    assert "".join(d["text"] for d in turn.deltas("text_delta")) == answer
    assert turn.deltas("signature_delta")
    assert turn.result.subtype == "success"
    assert not turn.result.is_error
    assert turn.result.result == answer
    assert turn.error is None
    (request,) = scripted_model.requests
    assert request["stream"] is True
    assert request["model"] == "claude-sonnet-4-5"


@pytest.mark.slow
async def test_cli_runs_two_parallel_tools_and_reports_both_results(
    scripted_model: ScriptedModel, agent_options: Options
) -> None:
    demo = create_sdk_mcp_server("demo", tools=[add])
    turn = await run_turn(
        agent_options(mcp_servers={"demo": demo}), "Add 2 and 3 and read /definitely/missing.txt"
    )

    calls = turn.blocks(ToolUseBlock)
    assert [(c.name, c.input) for c in calls] == [
        ("mcp__demo__add", {"a": 2, "b": 3}),
        ("Read", {"file_path": "/definitely/missing.txt"}),
    ]
    tool_messages = [m for m in turn.of(AssistantMessage) if m.content[0] in calls]
    assert len({m.message_id for m in tool_messages}) == 1  # one response, two tool_use blocks
    results = {r.tool_use_id: r for r in turn.blocks(ToolResultBlock)}
    added, read = results[calls[0].id], results[calls[1].id]
    assert added.content == [{"type": "text", "text": "5"}]
    assert not added.is_error
    assert read.is_error
    assert "does not exist" in str(read.content)
    assert turn.texts[-1] == "2 + 3 = 5, and /definitely/missing.txt does not exist."
    assert turn.result.subtype == "success"
    assert turn.result.num_turns == 3
    assert len(tool_results_in(scripted_model.requests[-1])) == 2


@pytest.mark.slow
async def test_cli_reports_a_denied_tool_to_the_model_as_an_error_result(
    scripted_model: ScriptedModel, agent_options: Options
) -> None:
    asked: list[dict[str, Any]] = []

    async def deny_bash(input_data: Any, tool_use_id: str | None, context: Any) -> Any:
        asked.append(input_data["tool_input"])
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": "Bash is disabled by policy in this session.",
            }
        }

    options = agent_options(hooks={"PreToolUse": [HookMatcher(matcher="Bash", hooks=[deny_bash])]})
    turn = await run_turn(options, "Run `echo hello`; it should be denied.")

    assert asked == [{"command": "echo hello", "description": "Print hello"}]
    (sent,) = tool_results_in(scripted_model.requests[-1])
    assert sent["is_error"] is True
    assert "Bash is disabled by policy in this session." in sent["content"]
    assert turn.texts[-1].startswith("I wasn't allowed to run `echo hello`")
    assert turn.result.subtype == "success"
    assert [d["tool_name"] for d in turn.result.permission_denials or []] == ["Bash"]


@pytest.mark.slow
async def test_cli_ends_the_turn_in_an_error_when_the_model_fails_mid_stream(
    scripted_model: ScriptedModel, agent_options: Options
) -> None:
    turn = await run_turn(agent_options(), "Summarize Hamlet, but the model is overloaded.")

    assert turn.result.is_error
    assert turn.result.api_error_status == 529
    assert turn.result.terminal_reason == "api_error"
    (synthetic,) = [m for m in turn.of(AssistantMessage) if m.error]
    assert "529" in synthetic.content[0].text
    partial = "".join(d["text"] for d in turn.deltas("text_delta"))
    assert partial == "Let me start answering that question for you"
    # The broken stream, then the CLI's non-streaming fallback, told not to retry.
    assert [c.answer for c in scripted_model.calls] == ["stream+error", "http 529"]
    assert [r["stream"] for r in scripted_model.requests] == [True, False]
    assert turn.seconds < 10


@pytest.mark.slow
async def test_cli_runs_a_slow_mcp_tool_and_says_when_it_is_done(
    scripted_model: ScriptedModel, agent_options: Options
) -> None:
    demo = create_sdk_mcp_server("demo", tools=[slow_op])
    turn = await run_turn(
        agent_options(mcp_servers={"demo": demo}), "Run the slow operation for 1 second."
    )

    (call,) = turn.blocks(ToolUseBlock)
    assert (call.name, call.input) == ("mcp__demo__slow_op", {"seconds": 1})
    assert turn.texts[-1] == (
        "The slow operation is done: it ran for 1 second. It reported: waited 1 s"
    )
    assert turn.result.subtype == "success"


@pytest.mark.slow
async def test_cli_runs_bash_and_summarises_its_output(
    scripted_model: ScriptedModel, agent_options: Options
) -> None:
    scripted_model.shell_command = "echo scripted"  # the operator's choice, not the prompt's
    turn = await run_turn(agent_options(), "Run `echo not-this` in the shell.")

    (result,) = turn.blocks(ToolResultBlock)
    assert not result.is_error
    assert turn.texts[-1] == "I ran `echo scripted`; it printed: scripted"
    assert turn.result.subtype == "success"


@pytest.mark.slow
async def test_cli_sends_earlier_turns_so_the_model_remembers_them(
    scripted_model: ScriptedModel, agent_options: Options
) -> None:
    answers = []
    async with ClaudeSDKClient(agent_options()) as client:
        for prompt in ("Remember the number 42.", "What number did I ask you to remember?"):
            await client.query(prompt)
            async for message in client.receive_response():
                if isinstance(message, AssistantMessage):
                    answers += [b.text for b in message.content if isinstance(b, TextBlock)]

    assert answers == [
        "Got it - I'll remember the number 42.",
        "You asked me to remember the number 42.",
    ]
    roles = [m["role"] for m in scripted_model.requests[-1]["messages"]]
    assert roles.count("assistant") == 1
