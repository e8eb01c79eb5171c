"""Acme's support agent: a team's own agent, hosted by agentlog (see README.md)."""
