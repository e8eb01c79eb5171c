"""What runs around every request: errors as JSON, the browser guard, auth, limits, the access
log."""
