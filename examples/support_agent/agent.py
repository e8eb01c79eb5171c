"""Acme's support agent, as a team writes it: plain `claude_agent_sdk` options, nothing of
agentlog's but the context its function is given.

- `agent(context)`: the support agent. Its system prompt names the session's customer (the
  session's `metadata`), it looks orders up and refunds them with two in-process tools (they run
  in the server process, so they could use a database or a secret the agent never sees), and
  tracks parcels with a stdio MCP server (`shipping_server.py`, started by the CLI inside the
  sandbox). Its own PreToolUse hook refuses refunds over $100; the operator's approval rule
  (AGENTLOG_APPROVE_TOOLS) makes a person approve the others.
- `billing`: a second agent, a plain `ClaudeAgentOptions` value.
- `workspace_template`: copied into each new session's workspace (CLAUDE.md, skills, commands),
  read by the CLI because the agent says `setting_sources=["project"]`.
- `no_retry_tools`: a refund must never be paid twice: if the server running a turn dies while
  one is in flight, the model is told it may or may not have run, and it is not run again in
  that turn.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from claude_agent_sdk import ClaudeAgentOptions, HookMatcher, create_sdk_mcp_server, tool

HERE = Path(__file__).resolve().parent
workspace_template = "workspace"
no_retry_tools = ["mcp__acme__refund_order"]

ORDERS: dict[str, dict[str, Any]] = {
    "A-1001": {"item": "kettle", "total": 49.0, "status": "shipped", "parcel": "P-77"},
    "A-1002": {"item": "espresso machine", "total": 349.0, "status": "delivered", "parcel": "P-78"},
}
REFUNDS: list[tuple[str, float]] = []  # what the refund tool did: a change outside the session


def _text(text: str, *, error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "is_error": error}


@tool("lookup_order", "Look up an order by id", {"order_id": str})
async def lookup_order(args: dict[str, Any]) -> dict[str, Any]:
    order = ORDERS.get(args["order_id"])
    if order is None:
        return _text(f"no order {args['order_id']}", error=True)
    return _text(
        f"order {args['order_id']}: {order['item']}, ${order['total']:.2f}, {order['status']}, "
        f"parcel {order['parcel']}"
    )


@tool("refund_order", "Refund part or all of an order", {"order_id": str, "amount": float})
async def refund_order(args: dict[str, Any]) -> dict[str, Any]:
    if args["order_id"] not in ORDERS:
        return _text(f"no order {args['order_id']}", error=True)
    REFUNDS.append((args["order_id"], float(args["amount"])))
    return _text(f"refunded ${float(args['amount']):.2f} on order {args['order_id']}")


acme = create_sdk_mcp_server("acme", tools=[lookup_order, refund_order])
shipping = {"type": "stdio", "command": sys.executable, "args": [str(HERE / "shipping_server.py")]}

REFUND_LIMIT = 100.0


async def refund_limit(input_data: Any, tool_use_id: str | None, context: Any) -> dict[str, Any]:
    """The team's own rule: a refund over the limit is never the agent's to make."""
    amount = float((input_data.get("tool_input") or {}).get("amount") or 0)
    if amount <= REFUND_LIMIT:
        return {}
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": (
                f"Refunds over ${REFUND_LIMIT:.0f} go to a human: tell the customer a colleague "
                "will follow up."
            ),
        }
    }


def agent(context: Any) -> ClaudeAgentOptions:
    """The support agent for one run (`context`: agentlog.infra.agent.agents.AgentContext)."""
    customer = context.metadata.get("customer", "an unknown customer")
    return ClaudeAgentOptions(
        system_prompt=(
            f"You are Acme's support agent. Customer: {customer}. Look orders up before you "
            "answer, and never promise a refund you have not made."
        ),
        mcp_servers={"acme": acme, "shipping": shipping},  # type: ignore[dict-item]
        allowed_tools=[
            "Read",
            "mcp__acme__lookup_order",
            "mcp__acme__refund_order",
            "mcp__shipping__track_parcel",
        ],
        hooks={
            "PreToolUse": [HookMatcher(matcher="mcp__acme__refund_order", hooks=[refund_limit])]
        },
        setting_sources=["project"],
        model="claude-sonnet-4-5",
        max_turns=12,
    )


billing = ClaudeAgentOptions(
    system_prompt="You are Acme's billing agent. You explain invoices; you never refund.",
    mcp_servers={"acme": acme},
    allowed_tools=["mcp__acme__lookup_order"],
    model="claude-sonnet-4-5",
)
