"""The claude-agent-sdk edge: its options, its SessionStore, and translating its messages into
events."""
