"""Redis: wake-ups across processes and the run lock, beside either database."""
