"""A stdio MCP server with one tool, `track_parcel`: what a team's own tool process looks like.

The CLI starts it inside agentlog's sandbox (with agentlog's Python, so `sys.executable` and the
standard library are there), and speaks JSON-RPC to it, one message per line. Standard library
only: the protocol's few methods need nothing more.
"""

from __future__ import annotations

import json
import sys
from typing import Any

PARCELS = {"P-77": "in transit, due Tuesday", "P-78": "delivered to the front desk"}
TOOLS = [
    {
        "name": "track_parcel",
        "description": "Where a parcel is",
        "inputSchema": {
            "type": "object",
            "properties": {"parcel": {"type": "string"}},
            "required": ["parcel"],
        },
    }
]


def answer(request: dict[str, Any]) -> dict[str, Any] | None:
    """The reply to one JSON-RPC message (None for a notification)."""
    method, params = request.get("method"), request.get("params") or {}
    if "id" not in request:
        return None
    if method == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": params.get("protocolVersion", "2024-11-05"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "shipping", "version": "1.0.0"},
        }
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call" and params.get("name") == "track_parcel":
        parcel = str((params.get("arguments") or {}).get("parcel", ""))
        where = PARCELS.get(parcel)
        text = f"parcel {parcel}: {where}" if where else f"no parcel {parcel}"
        result = {"content": [{"type": "text", "text": text}], "isError": where is None}
    elif method == "ping":
        result = {}
    else:
        error = {"code": -32601, "message": f"no method {method}"}
        return {"jsonrpc": "2.0", "id": request["id"], "error": error}
    return {"jsonrpc": "2.0", "id": request["id"], "result": result}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = answer(json.loads(line))
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
