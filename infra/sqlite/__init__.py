"""The embedded backend: one SQLite file holds the log, the projections and the transcripts."""
