"""Audit trail: API changes recorded with the key that made them, and admin-action helpers (LogEntry, confirm)."""
