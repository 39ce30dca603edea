"""Consistency across environments and against the live world: parity, explain, drift."""
