"""Redis: wake-ups across processes, beside either database (never who owns a run)."""
