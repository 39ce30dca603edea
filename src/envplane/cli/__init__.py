"""The `envplane` command: a thin layer over envplane.lifecycle."""
