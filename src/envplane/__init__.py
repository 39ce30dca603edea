"""envplane: the whole lifecycle of deployment environments from one declarative matrix."""

__version__ = "0.1.0"
