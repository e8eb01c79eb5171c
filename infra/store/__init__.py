"""What every backend shares: validation, group commit, the append plan, opening a store, the
projector."""
