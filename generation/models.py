"""Models of this app (added by its issue)."""
