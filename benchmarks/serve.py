"""Serve Treue for the benchmark: `python benchmarks/serve.py --port P --workers N`.

The same as `uvicorn app_factory:app --app-dir benchmarks --workers N --no-access-log`, except that the
listening socket is created with proto=IPPROTO_TCP. uvicorn's own multi-worker path binds it with proto 0;
accepted connections inherit that, asyncio then does not set TCP_NODELAY on them, and every keep-alive
response waits ~40 ms for the client's delayed ACK (Nagle). See uvicorn issue #3149. `earn_bench.py
--stock-uvicorn` runs plain `uvicorn --workers N` instead, to show the difference.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))  # spawned workers inherit sys.path and import app_factory from here
    config = uvicorn.Config("app_factory:app", host=args.host, port=args.port, workers=args.workers,
                            log_level="warning", access_log=False)  # fmt: skip
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.set_inheritable(True)
    if args.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
