"""The model without a network: a scripted Messages API on loopback, and a replayed CLI session."""
