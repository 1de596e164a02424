"""Magnetic memory: experiences agents store and recall by meaning (see docs/memory.md)."""
