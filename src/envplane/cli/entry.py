"""The `envplane` console script: through the warm server when one runs, else the CLI here.

Importing the CLI costs about a second (SQLAlchemy, pydantic and the matrix models, click,
rich...). A warm server (`envplane warm start`, docs/warm.md) has paid that once; this module,
standard library only, hands it the command and becomes its exit code. Without a server, or
with ENVPLANE_WARM=0, a run costs one failed connect more than it did before, and is the
ordinary CLI: nothing is said about the server that is not there.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    if os.environ.get("ENVPLANE_WARM") != "0":
        from envplane.cli.warmclient import run_warm

        code = run_warm(sys.argv)
        if code is not None:
            sys.stdout.flush()
            os._exit(code)  # nothing of ours to tear down: the child did the work
    from envplane.cli.main import main as cold

    cold()


if __name__ == "__main__":
    main()
