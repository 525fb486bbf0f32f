#!/usr/bin/env python3
"""The marathon-args app: flags on its command line, state in a data directory.

It stands for any program configured by flags (``--port 8080``) rather than
a file or the environment, which under Marathon means ``"args"``: passed to
the ENTRYPOINT without a shell, so ``$PORT0`` arrives literally unless
``entrypoint run --expand-args`` expands it.  It runs as the unprivileged
user ``app`` (``--user``), writes one file into its data directory at start
(proving the directory is writable by it), and answers every GET with a JSON
report of who it is.  SIGTERM: stop accepting, finish, exit 0.
Standard library only.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import signal
import sys
import threading
from types import FrameType


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="server.py")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--data", required=True, help="a directory this user can write")
    parser.add_argument("--name", default="app")
    args = parser.parse_args(argv)
    marker = os.path.join(args.data, "started-by")
    with open(marker, "w", encoding="utf-8") as fh:  # fails loudly if the directory is not ours
        fh.write(f"{os.getuid()}\n")
    report = json.dumps({"name": args.name, "port": args.port, "uid": os.getuid(), "gid": os.getgid(),
                         "groups": sorted(os.getgroups()), "home": os.environ.get("HOME"),
                         "data_file": marker}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(report)))
            self.end_headers()
            self.wfile.write(report)

        def log_message(self, format: str, *items: object) -> None:
            sys.stderr.write(f"[app] {format % items}\n")

    server = http.server.ThreadingHTTPServer((args.bind, args.port), Handler)
    stopping = threading.Event()

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"[app] {args.name} listening on {args.bind}:{args.port} as uid {os.getuid()}", flush=True)
    stopping.wait()
    server.shutdown()
    server.server_close()
    print("[app] stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
