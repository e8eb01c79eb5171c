"""Confinement: bubblewrap around the CLI and its tools, and the model gateway it reaches the model
through."""
