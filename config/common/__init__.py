"""Helpers every app may use; this package imports no app of ours (only Django and libraries)."""
