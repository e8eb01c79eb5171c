"""The CLI's own transcript: converted from events, repaired, made ready to resume, cut for
branches."""
