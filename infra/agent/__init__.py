"""The agent edge: running the Claude Agent SDK, and the fakes it is checked against."""
