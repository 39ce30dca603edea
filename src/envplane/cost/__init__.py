"""What environments cost: a shipped AWS price table, estimates per resource line, plan deltas."""
