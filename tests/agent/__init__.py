"""Tests of the agent edge: the SDK translator, the replay transport, the scripted model."""
