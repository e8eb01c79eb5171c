"""The `agentlog` command."""
