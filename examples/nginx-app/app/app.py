"""The example's app: a small HTTP service on a Unix socket, behind nginx in the same container.

Standard library only.  It listens on ``APP_SOCKET`` (default /run/app/app.sock), so it needs no
port of its own on a HOST-networked agent: only nginx takes the Marathon port.  Once it listens it
writes a newline to fd 3, s6's readiness notification (its service directory says
``notification-fd`` 3): entrypoint starts nginx only then.  SIGTERM ends it with exit 0.
"""

from __future__ import annotations

import json
import os
import signal
import socketserver
import sys
from http.server import BaseHTTPRequestHandler

SOCKET = os.environ.get("APP_SOCKET", "/run/app/app.sock")
NOTIFICATION_FD = 3


class Handler(BaseHTTPRequestHandler):
    server_version = "example-app/1.0"

    def do_GET(self) -> None:
        if self.path == "/health":
            self.reply(200, "text/plain", b"ok\n")
            return
        body = {
            "app": "entrypoint nginx-app example",
            "path": self.path,
            "served_by": os.environ.get("MESOS_TASK_ID", "local"),
            "service": os.environ.get("ENTRYPOINT_SERVICE"),
            "forwarded_for": self.headers.get("X-Forwarded-For"),
        }
        self.reply(200, "application/json", json.dumps(body).encode() + b"\n")

    def reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        return self.headers.get("X-Forwarded-For", "nginx") if self.headers else "nginx"

    def log_message(self, format: str, *args: object) -> None:
        print(f"{self.address_string()} {format % args}", file=sys.stderr, flush=True)


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def notify_ready() -> None:
    """s6's protocol: one newline on the notification fd, then close it (no fd: started by hand)."""
    try:
        os.write(NOTIFICATION_FD, b"\n")
        os.close(NOTIFICATION_FD)
    except OSError:
        pass


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        os.unlink(SOCKET)  # left by a killed predecessor: bind would fail
    except FileNotFoundError:
        pass
    with Server(SOCKET, Handler) as server:
        os.chmod(SOCKET, 0o666)  # nginx's workers (www-data) connect to it
        print(f"listening on unix:{SOCKET}", flush=True)
        notify_ready()
        try:
            server.serve_forever()
        except SystemExit:
            print("SIGTERM: stopping", file=sys.stderr, flush=True)
            raise
        finally:
            try:
                os.unlink(SOCKET)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
