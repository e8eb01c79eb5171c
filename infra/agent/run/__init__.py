"""One agent run: lease, HOME, SDK turn, hooks, approvals, jobs and the ordered recorder."""
