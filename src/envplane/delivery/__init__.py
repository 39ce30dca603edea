"""Releases and their delivery: deploy, promote, approve, roll back."""
