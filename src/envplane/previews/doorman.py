"""The doorman: what answers on a sleeping environment's front door (nginx's port) while its
servers are stopped. Every request gets `503 Service Unavailable` with `Retry-After` and a
short page saying the environment is asleep or waking up - never a refused connection. With
`--wake`, the first request starts `envplane wake ENV` (once); the wake stops the doorman
right before nginx takes the port back.

Run as `python -m envplane.previews.doorman --env ENV --port PORT --matrix FILE [--wake]`,
detached, with the environment's ENVPLANE_ENV_DIR marker (its destroy stops it like any
other process of the environment). Binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RETRY_AFTER = 5  # seconds: a wake takes about one


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self, body: bool) -> None:
        self.server.requested()
        waking = self.server.waking.is_set()
        state = "waking up" if waking else "asleep"
        page = (
            f"<!doctype html><title>{self.server.env} is {state}</title>"
            f"<h1>{self.server.env} is {state}</h1>"
            + (
                f"<p>Try again in {RETRY_AFTER} seconds.</p>"
                if waking
                else f"<p>Wake it with <code>envplane wake {self.server.env}</code>.</p>"
            )
        ).encode()
        self.send_response(503)
        self.send_header("Retry-After", str(RETRY_AFTER))
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.send_header("X-Envplane-State", state.replace(" ", "-"))
        self.end_headers()
        if body:
            self.wfile.write(page)

    def do_GET(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: object) -> None:
        return  # the access log of a sleeping environment is its requests' time, kept below


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog (socketserver's default is 5): a burst of requests at a sleeping
    # preview, on a busy machine, must wait for their 503 rather than have their SYNs dropped.
    request_queue_size = 128

    def __init__(self, port: int, env: str, wake: list[str] | None, log: Path) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.env = env
        self.wake_command = wake
        self.waking = threading.Event()
        self.log = log

    def requested(self) -> None:
        import json
        import time

        # The idle detector reads nginx's access log; a sleeping preview's requests go there too.
        with self.log.open("a") as f:
            f.write(
                json.dumps({"t": round(time.time(), 3), "status": 503, "uri": "doorman"}) + "\n"
            )
        if self.wake_command is not None and not self.waking.is_set():
            self.waking.set()
            subprocess.Popen(
                self.wake_command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="envplane-doorman")
    parser.add_argument("--env", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--matrix", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--wake", action="store_true")
    args = parser.parse_args(argv)
    envplane = str(Path(sys.executable).with_name("envplane"))
    wake = [envplane, "-f", args.matrix, "wake", args.env] if args.wake else None
    server = _Server(args.port, args.env, wake, Path(args.log))
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.write(f"{os.getpid()}\n")
    sys.stdout.flush()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
