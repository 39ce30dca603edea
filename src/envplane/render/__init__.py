"""Desired state: everything an environment should be, as data, from the matrix."""
