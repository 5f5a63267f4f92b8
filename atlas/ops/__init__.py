"""Operations: worker heartbeats, broker checks, structured logs (docs/operations.md)."""
