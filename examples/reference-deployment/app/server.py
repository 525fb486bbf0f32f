#!/usr/bin/env python3
"""The reference app: a static HTTP server configured by a rendered file.

It stands for any program that reads a config file instead of the
environment.  It answers on the ``port``/``bind_address`` of its
``server.properties`` and stops gracefully on SIGTERM: it stops accepting,
lets in-flight requests finish, and exits 0 -- so ``docker stop`` (or a Mesos
kill) ends it in milliseconds, and the container reports success.
Standard library only: it runs on any image that has python3.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import signal
import sys
import threading
from pathlib import Path


def read_properties(path: Path) -> dict[str, str]:
    """``key = value`` lines; ``#`` comments and blank lines ignored."""
    props: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise SystemExit(f"{path}:{lineno}: expected 'key = value'")
        props[key.strip()] = value.strip()
    return props


def listen_address(props: dict[str, str], path: Path) -> tuple[str, int]:
    """Refuse an empty or non-numeric setting up front instead of binding somewhere surprising."""
    port_text, bind = props.get("port", ""), props.get("bind_address", "")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SystemExit(f"{path}: 'port' must be a TCP port, got {port_text!r}")
    if not bind:
        raise SystemExit(f"{path}: 'bind_address' is empty")
    return bind, int(port_text)


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"[app] {self.address_string()} {format % args}\n")


def serve(bind: str, port: int, directory: str) -> int:
    server = http.server.ThreadingHTTPServer((bind, port), functools.partial(Handler, directory=directory))
    server.daemon_threads = False  # server_close() waits for in-flight requests
    # TERM/INT are blocked before any thread starts, so every thread inherits the mask and only
    # sigwait() below takes them.  With a handler and Event.wait() instead, a signal the kernel hands
    # to a busy request thread leaves the main thread asleep for good: under load, TERM was lost.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    sys.stderr.write(f"[app] serving {directory} on http://{bind}:{port}/\n")
    signum = signal.sigwait(stop_signals)
    sys.stderr.write(f"[app] {signal.Signals(signum).name}: finishing in-flight requests\n")
    server.shutdown()
    server.server_close()
    sys.stderr.write("[app] stopped\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("/etc/app/server.properties"))
    parser.add_argument("--directory", default=".", help="what to serve")
    args = parser.parse_args(argv)
    try:
        props = read_properties(args.config)
    except OSError as exc:
        raise SystemExit(f"{args.config}: {exc.strerror}") from None
    bind, port = listen_address(props, args.config)
    return serve(bind, port, args.directory)


if __name__ == "__main__":
    sys.exit(main())
