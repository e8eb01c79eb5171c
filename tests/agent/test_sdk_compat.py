"""The claude-agent-sdk surface agentlog relies on: an SDK upgrade that breaks it fails here first.

Each check names what moved and who depends on it (the translator, the replay transport, or the
runner), so the failure message is the to-do list for the upgrade.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import claude_agent_sdk as sdk
import pytest

from agentlog.infra.agent.offline.replay_transport import ReplayTransport

VERSION = getattr(sdk, "__version__", "unknown")


def fail(what: str) -> None:
    pytest.fail(f"claude-agent-sdk {VERSION}: {what}", pytrace=False)


def public(name: str) -> Any:
    if not hasattr(sdk, name):
        fail(f"`claude_agent_sdk.{name}` is gone")
    return getattr(sdk, name)


def field_names(cls: type) -> set[str]:
    if not dataclasses.is_dataclass(cls):
        fail(f"{cls.__name__} is no longer a dataclass")
    return {f.name for f in dataclasses.fields(cls)}


def parameters(func: Any) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(func).parameters)


# -- messages and content blocks: read by infra/agent/sdk/translate.py ---------------------------

MESSAGE_FIELDS: dict[str, set[str]] = {
    "AssistantMessage": {
        "content",
        "model",
        "parent_tool_use_id",
        "error",
        "usage",
        "message_id",
        "stop_reason",
        "uuid",
    },
    "UserMessage": {"content", "parent_tool_use_id", "tool_use_result"},
    "SystemMessage": {"subtype", "data"},
    "ResultMessage": {
        "subtype",
        "duration_ms",
        "duration_api_ms",
        "is_error",
        "num_turns",
        "session_id",
        "stop_reason",
        "total_cost_usd",
        "usage",
        "result",
        "permission_denials",
        "errors",
        "api_error_status",
        "terminal_reason",
    },
    "StreamEvent": {"uuid", "session_id", "event", "parent_tool_use_id"},
    "RateLimitEvent": {"rate_limit_info"},
    "RateLimitInfo": {"status", "raw"},
    "ConversationResetMessage": {"new_conversation_id"},
    "TextBlock": {"text"},
    "ThinkingBlock": {"thinking", "signature"},
    "ToolUseBlock": {"id", "name", "input"},
    "ToolResultBlock": {"tool_use_id", "content", "is_error"},
    "ServerToolUseBlock": {"id", "name", "input"},
    "ServerToolResultBlock": {"tool_use_id", "content"},
}


@pytest.mark.parametrize("name", sorted(MESSAGE_FIELDS))
def test_message_dataclasses_keep_the_fields_the_translator_reads(name: str) -> None:
    missing = MESSAGE_FIELDS[name] - field_names(public(name))
    if missing:
        fail(f"{name} lost {sorted(missing)}; infra/agent/sdk/translate.py reads them")


@pytest.mark.parametrize(
    "name",
    ["TaskStartedMessage", "TaskProgressMessage", "TaskNotificationMessage", "HookEventMessage"],
)
def test_system_frame_subclasses_are_still_system_messages(name: str) -> None:
    # The translator logs every SystemMessage subtype as agent_status via one isinstance check.
    if not issubclass(public(name), sdk.SystemMessage):
        fail(f"{name} no longer subclasses SystemMessage; translate.py would drop it")


def test_the_message_union_has_no_type_the_translator_does_not_know() -> None:
    known = {
        "UserMessage",
        "AssistantMessage",
        "SystemMessage",
        "ResultMessage",
        "StreamEvent",
        "RateLimitEvent",
        "ConversationResetMessage",
    }
    union = {cls.__name__ for cls in public("Message").__args__}
    subclasses_of_system = {
        n for n in union if issubclass(getattr(sdk, n, object), sdk.SystemMessage)
    }
    new = union - known - subclasses_of_system
    if new:
        fail(f"new message types {sorted(new)}: decide what the translator records for them")


def test_content_blocks_are_the_ones_the_translator_handles() -> None:
    handled = {
        "TextBlock",
        "ThinkingBlock",
        "ToolUseBlock",
        "ToolResultBlock",
        "ServerToolUseBlock",
        "ServerToolResultBlock",
    }
    blocks = {cls.__name__ for cls in public("ContentBlock").__args__}
    if blocks - handled:
        fail(f"new content blocks {sorted(blocks - handled)}: translate them in translate.py")


# -- the client, options and helpers a runner uses -------------------------------------------

CLIENT_METHODS = {
    "connect": ("prompt",),
    "query": ("prompt", "session_id"),
    "receive_response": (),
    "receive_messages": (),
    "interrupt": (),
    "disconnect": (),
}


@pytest.mark.parametrize("method", sorted(CLIENT_METHODS))
def test_client_methods_keep_their_shape(method: str) -> None:
    client_cls = public("ClaudeSDKClient")
    func = getattr(client_cls, method, None)
    if func is None:
        fail(f"ClaudeSDKClient.{method} is gone")
    if method.startswith("receive_"):
        if not inspect.isasyncgenfunction(func):
            fail(f"ClaudeSDKClient.{method} is no longer an async iterator")
    elif not inspect.iscoroutinefunction(func):
        fail(f"ClaudeSDKClient.{method} is no longer a coroutine")
    missing = set(CLIENT_METHODS[method]) - set(parameters(func))
    if missing:
        fail(f"ClaudeSDKClient.{method} lost parameters {sorted(missing)}")


def test_client_takes_options_and_a_custom_transport_and_is_an_async_context_manager() -> None:
    client_cls = public("ClaudeSDKClient")
    if not {"options", "transport"} <= set(parameters(client_cls.__init__)):
        fail("ClaudeSDKClient(options, transport) changed; the runner and replay tests use both")
    if not (hasattr(client_cls, "__aenter__") and hasattr(client_cls, "__aexit__")):
        fail("ClaudeSDKClient is no longer an async context manager (deterministic teardown)")


def test_query_takes_a_custom_transport() -> None:
    if not {"prompt", "options", "transport"} <= set(parameters(public("query"))):
        fail("query(prompt, options, transport) changed")


OPTION_FIELDS = {
    "resume",
    "session_id",
    "hooks",
    "can_use_tool",
    "mcp_servers",
    "include_partial_messages",
    "env",
    "cwd",
    "cli_path",
    "permission_mode",
    "allowed_tools",
    "setting_sources",
    "stderr",
    "model",
}


def test_options_keep_the_fields_the_runner_sets() -> None:
    missing = OPTION_FIELDS - field_names(public("ClaudeAgentOptions"))
    if missing:
        fail(f"ClaudeAgentOptions lost {sorted(missing)}")


def test_the_transcript_location_helper_keeps_the_clis_project_key() -> None:
    # infra/agent/transcripts/conversion.py writes the resume transcript under this directory name.
    key = public("project_key_for_directory")
    if key("/w/x_y.z") != "-w-x-y-z":
        fail("project_key_for_directory() changed; the resume transcript would be misplaced")


def test_hook_matcher_and_sdk_mcp_helpers_keep_their_shape() -> None:
    missing = {"matcher", "hooks", "timeout"} - field_names(public("HookMatcher"))
    if missing:
        fail(f"HookMatcher lost {sorted(missing)}")
    if not {"name", "version", "tools"} <= set(parameters(public("create_sdk_mcp_server"))):
        fail("create_sdk_mcp_server(name, version, tools) changed")
    if not {"name", "description", "input_schema"} <= set(parameters(public("tool"))):
        fail("tool(name, description, input_schema) changed")

    @sdk.tool("ping", "Answer pong", {})
    async def ping(args: dict[str, Any]) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": "pong"}]}

    server = sdk.create_sdk_mcp_server("demo", tools=[ping])
    if server.get("type") != "sdk" or "instance" not in server:
        fail("create_sdk_mcp_server() no longer returns an in-process ('sdk') server config")


def test_permission_results_keep_their_shape() -> None:
    if "updated_input" not in field_names(public("PermissionResultAllow")):
        fail("PermissionResultAllow.updated_input is gone")
    if not {"message", "interrupt"} <= field_names(public("PermissionResultDeny")):
        fail("PermissionResultDeny(message, interrupt) changed")


def test_errors_a_runner_catches_keep_their_hierarchy() -> None:
    result_error = public("ResultError")
    process_error = public("ProcessError")
    if not issubclass(result_error, process_error):
        fail("ResultError no longer subclasses ProcessError")
    if not issubclass(public("CLIConnectionError"), public("ClaudeSDKError")):
        fail("CLIConnectionError no longer subclasses ClaudeSDKError")
    if "exit_code" not in parameters(process_error.__init__):
        fail("ProcessError(exit_code=...) changed; the replay transport raises it")


# -- the Transport contract: implemented by infra/agent/offline/replay_transport.py
# ------------------

TRANSPORT_METHODS = {"connect", "write", "read_messages", "close", "is_ready", "end_input"}


def test_transport_abstract_methods_are_the_ones_the_replay_implements() -> None:
    abstract = set(public("Transport").__abstractmethods__)
    if abstract - TRANSPORT_METHODS:
        fail(f"Transport gained abstract methods {sorted(abstract - TRANSPORT_METHODS)}")
    if TRANSPORT_METHODS - abstract:
        fail(f"Transport dropped {sorted(TRANSPORT_METHODS - abstract)}; revisit ReplayTransport")
    for name in ("connect", "write", "close", "end_input"):
        if not inspect.iscoroutinefunction(getattr(sdk.Transport, name)):
            fail(f"Transport.{name} is no longer async")
    ReplayTransport([])  # instantiable: implements every abstract method
