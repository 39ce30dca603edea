"""The engine runs plans: one lock per environment, a journal line before and after each step."""
