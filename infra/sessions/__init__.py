"""Use cases on a whole session: deletion, workspaces, forking, export and import, approval
answers, verification."""
