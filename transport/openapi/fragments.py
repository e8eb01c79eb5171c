"""The pieces operations share: error and JSON responses, JSON request bodies, path parameters."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}


def returns_error(description: str) -> dict[str, Any]:
    """A response whose body is the API's error object (`{"error": {"code", "message"}}`)."""
    return returns_json(description, ERROR)


def returns_json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def takes_json(schema: dict[str, Any], *, description: str | None = None) -> dict[str, Any]:
    """A required JSON request body."""
    body: dict[str, Any] = {"required": True}
    if description is not None:
        body["description"] = description
    body["content"] = {"application/json": {"schema": schema}}
    return body


def path_parameter(name: str) -> dict[str, Any]:
    """A string in the route's path, as `{name}`."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


SESSION_ID = path_parameter("session_id")
RUN_ID = path_parameter("run_id")

# Writes need `Content-Type: application/json` (415 otherwise), so even those that take no
# fields take a JSON object.
EMPTY_JSON_BODY = takes_json(
    {"type": "object"},
    description="any JSON object (`{}`); state-changing requests must be JSON",
)
