"""In-process delivery: wake-ups within one server process."""
