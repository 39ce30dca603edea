"""Environment validation at three levels (seed §7), with JUnit XML output."""

from envplane.validate.checks import Check, Report, run_validation
from envplane.validate.junit import write_junit

__all__ = ["Check", "Report", "run_validation", "write_junit"]
