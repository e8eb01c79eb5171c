"""The routes about the service itself: readiness and this document."""

from __future__ import annotations

from typing import Any

SERVICE_PATHS: dict[str, Any] = {
    "/healthz": {
        "get": {
            "summary": "Readiness: the database (and Redis when configured) answer",
            "security": [],
            "responses": {
                "200": {"description": "ok"},
                "503": {"description": "a dependency is down"},
            },
        }
    },
    "/v1/openapi.json": {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OpenAPI"}},
        }
    },
}
