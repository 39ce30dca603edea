"""The local target: real processes on this machine under one supervisord per environment.

Importing this package is cheap; psycopg, redis-py and supervisor load only when used."""

from envplane.targets.local.driver import LocalTarget

__all__ = ["LocalTarget"]
