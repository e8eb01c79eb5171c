"""Pure decisions: a state and a request in, events or a domain error out; no I/O."""
