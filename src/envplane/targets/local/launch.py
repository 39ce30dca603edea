"""Starts one supervised program: read its launch spec, then become the program (execve).

Runs as `python -I -S launch.py SPEC.json` under the run user, before anything else is imported:
stdlib only, no envplane imports. The spec (argv, cwd, full environment incl. secrets) lives in a
0600 file owned by the run user, because supervisord's ini syntax cannot carry arbitrary values
(';', '#', '%', quotes, newlines) in `environment=` or `command=` safely.
"""

import json
import os
import sys


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    argv = [str(a) for a in spec["argv"]]
    try:
        os.chdir(spec["cwd"])
        os.execvpe(argv[0], argv, {str(k): str(v) for k, v in spec["env"].items()})  # noqa: S606
    except OSError as exc:
        sys.stderr.write(f"envplane launch: cannot run {argv[0]!r} in {spec['cwd']}: {exc}\n")
        sys.exit(127)


if __name__ == "__main__":
    main()
