"""The session log's vocabulary, rules and ports: pure, no I/O."""
