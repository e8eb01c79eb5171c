"""Ports: what agentlog needs from the outside world, one Protocol per file, its contract in the
docstring."""
