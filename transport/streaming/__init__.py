"""Live delivery: Server-Sent Events and the per-process session feeds."""
