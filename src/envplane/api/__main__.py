"""`python -m envplane.api`: what `envplane serve` runs once it checked its arguments."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from envplane.api.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="envplane serve")
    parser.add_argument("--matrix", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ssl-certfile", default=None)
    parser.add_argument("--ssl-keyfile", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    tls = args.ssl_certfile is not None
    from envplane.api.dashboard import mount  # the web dashboard, on the same sessions

    app = create_app(args.matrix, workers=args.workers, tls=tls, **mount())
    # The access log prints the request line: paths and queries carry no secrets here
    # (tokens travel in headers, passwords in bodies), so it stays on.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        log_level="info",
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
