"""--wait: real listeners on loopback, real HTTP servers, real files; short deadlines."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoint.errors import UsageError, WaitTimeout
from entrypoint.supervise.steps.waits import parse_wait_url, wait_for
from tests.pid1_helpers import free_port

pytestmark = pytest.mark.timeout(60)


class DelayedListener:
    """Starts listening on *port* after *delay* seconds, from a thread; records when."""

    def __init__(self, port: int, delay: float) -> None:
        self.port = port
        self.delay = delay
        self.listening_at: float | None = None
        self.sock: socket.socket | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if self._stop.wait(self.delay):
            return
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(16)
        self.sock = sock
        self.listening_at = time.monotonic()

    def __enter__(self) -> DelayedListener:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(5)
        if self.sock is not None:
            self.sock.close()


def test_tcp_listener_that_comes_up_later() -> None:
    port = free_port()
    with DelayedListener(port, 0.3) as listener:
        wait_for([f"tcp://127.0.0.1:{port}"], timeout=10)
        done = time.monotonic()
        assert listener.listening_at is not None, "wait_for returned before the listener existed"
        assert done - listener.listening_at < 1.5  # backoff is capped at 1 s


def test_tcp_timeout_names_the_url() -> None:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    start = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        wait_for([url], timeout=0.5)
    elapsed = time.monotonic() - start
    assert str(info.value) == f"timed out after 0.5s waiting for: {url}"
    assert info.value.exit_code == 69
    assert 0.45 <= elapsed < 2.0


def test_timeout_names_only_what_did_not_come_up(tmp_path: Path) -> None:
    there = tmp_path / "there"
    there.touch()
    missing = f"file://{tmp_path}/missing"
    with pytest.raises(WaitTimeout) as info:
        wait_for([f"file://{there}", missing], timeout=0.3)
    assert str(info.value).endswith(f"waiting for: {missing}")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, StatusServer)
        server.requests.append((self.path, self.headers.get("Authorization")))
        code = server.status
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class StatusServer(http.server.ThreadingHTTPServer):
    status = 200
    requests: list[tuple[str, str | None]]


@pytest.fixture
def http_server() -> Iterator[StatusServer]:
    server = StatusServer(("127.0.0.1", 0), Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_http_200_is_up(http_server: StatusServer) -> None:
    port = http_server.server_address[1]
    wait_for([f"http://127.0.0.1:{port}/health?x=1"], timeout=5)
    assert http_server.requests[0][0] == "/health?x=1"


def test_http_302_is_up(http_server: StatusServer) -> None:
    http_server.status = 302
    wait_for([f"http://127.0.0.1:{http_server.server_address[1]}/"], timeout=5)


@pytest.mark.parametrize("status", [500, 503, 404])
def test_http_error_status_is_not_up(http_server: StatusServer, status: int) -> None:
    http_server.status = status
    url = f"http://127.0.0.1:{http_server.server_address[1]}/health"
    with pytest.raises(WaitTimeout, match="waiting for: " + url.replace("?", r"\?")):
        wait_for([url], timeout=0.5)
    assert len(http_server.requests) >= 2  # it retried


def test_http_becomes_healthy(http_server: StatusServer) -> None:
    http_server.status = 503
    flip = threading.Timer(0.3, lambda: setattr(http_server, "status", 200))
    flip.start()
    try:
        wait_for([f"http://127.0.0.1:{http_server.server_address[1]}/"], timeout=10)
    finally:
        flip.cancel()
    assert http_server.status == 200


def test_http_credentials_are_sent_but_never_shown(http_server: StatusServer) -> None:
    http_server.status = 500
    port = http_server.server_address[1]
    with pytest.raises(WaitTimeout) as info:
        wait_for([f"http://user:s3cret@127.0.0.1:{port}/"], timeout=0.3)
    assert "s3cret" not in str(info.value)
    assert f"http://user:***@127.0.0.1:{port}/" in str(info.value)
    assert http_server.requests[0][1] == "Basic dXNlcjpzM2NyZXQ="


def test_https_against_plain_http_is_not_up(http_server: StatusServer) -> None:
    with pytest.raises(WaitTimeout):
        wait_for([f"https://127.0.0.1:{http_server.server_address[1]}/"], timeout=0.3, insecure=True)


def test_file_that_appears(tmp_path: Path) -> None:
    target = tmp_path / "ready"
    timer = threading.Timer(0.3, target.touch)
    timer.start()
    try:
        wait_for([f"file://{target}"], timeout=10)
    finally:
        timer.cancel()
    assert target.exists()


def test_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as srv:
        srv.bind(str(path))
        srv.listen(1)
        wait_for([f"unix://{path}"], timeout=5)
    with pytest.raises(WaitTimeout):
        wait_for([f"unix://{tmp_path}/none.sock"], timeout=0.2)


def test_unix_socket_that_comes_up_later(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def listen() -> None:
        srv.bind(str(path))
        srv.listen(1)

    timer = threading.Timer(0.2, listen)
    timer.start()
    try:
        wait_for([f"unix://{path}"], timeout=10)
        assert path.exists()
    finally:
        timer.cancel()
        srv.close()


def _stale_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as dead:  # bound, listened, closed: the file stays, refusing
        dead.bind(str(path))
        dead.listen(1)


def _bound_only(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))  # not listening yet: connect is refused
    return sock


def _datagram(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))  # a datagram socket never accepts a stream connection
    return sock


@pytest.mark.parametrize("kind", ["stale", "bound", "datagram", "regular file", "directory"])
def test_unix_socket_that_does_not_accept_is_not_up(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "s.sock"
    keep = None
    if kind == "stale":
        _stale_socket(path)
    elif kind == "bound":
        keep = _bound_only(path)
    elif kind == "datagram":
        keep = _datagram(path)
    elif kind == "regular file":
        path.write_text("")
    else:
        path.mkdir()
    try:
        with pytest.raises(WaitTimeout) as info:
            wait_for([f"unix://{path}"], timeout=0.3)
        assert f"unix://{path}" in str(info.value)
    finally:
        if keep is not None:
            keep.close()


def test_unix_url_forms() -> None:
    assert parse_wait_url("unix:///run/php/fpm.sock").path == "/run/php/fpm.sock"
    t = parse_wait_url("unix://localhost/run/app.sock")
    assert (t.scheme, t.path) == ("unix", "/run/app.sock")
    longest = "/" + "s" * 107
    assert parse_wait_url(f"unix://{longest}").path == longest


@pytest.mark.parametrize("url", ["unix://", "unix://run/app.sock", "unix://host/run/app.sock",
                                 "unix:///" + "s" * 108])
def test_bad_unix_urls(url: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_wait_url(url)
    assert "unix:///ABSOLUTE/PATH" in str(info.value) or "at most 108 bytes" in str(info.value)


def test_everything_together(tmp_path: Path, http_server: StatusServer) -> None:
    port = free_port()
    target = tmp_path / "f"
    timer = threading.Timer(0.2, target.touch)
    timer.start()
    try:
        with DelayedListener(port, 0.2):
            wait_for(
                [
                    f"tcp://127.0.0.1:{port}",
                    f"http://127.0.0.1:{http_server.server_address[1]}/",
                    f"file://{target}",
                ],
                timeout=10,
            )
    finally:
        timer.cancel()


def test_empty_list_returns_at_once() -> None:
    wait_for([], timeout=0.1)


def test_sleep_hook_can_abort_the_wait() -> None:
    """PID 1 passes a sleep that watches its stop signals; its exception ends the wait."""

    class Stop(Exception):
        pass

    calls: list[float] = []

    def sleeper(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) == 3:
            raise Stop

    with pytest.raises(Stop):
        wait_for([f"tcp://127.0.0.1:{free_port()}"], timeout=30, sleep=sleeper)
    assert calls[0] == pytest.approx(0.05) and calls[1] == pytest.approx(0.1)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "db:5432",
        "tcp://127.0.0.1",
        "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:99999",
        "tcp://127.0.0.1:http",
        "tcp://:80",
        "file://relative/path",
        "file://",
        "tcp://[::1:80",
        "tcp://u:p@127.0.0.1:80",
    ],
)
def test_bad_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError) as info:
        wait_for([url], timeout=1)
    assert info.value.exit_code == 2
    assert url.split("@")[-1] in str(info.value) or "127.0.0.1" in str(info.value)


def test_bad_timeout() -> None:
    with pytest.raises(UsageError):
        wait_for(["file:///"], timeout=-1)


def test_parse() -> None:
    t = parse_wait_url("tcp://[::1]:5432")
    assert (t.scheme, t.host, t.port) == ("tcp", "::1", 5432)
    t = parse_wait_url("https://example.org")
    assert (t.host, t.port, t.path) == ("example.org", 443, "/")
    t = parse_wait_url("file://localhost/etc/passwd")
    assert t.path == "/etc/passwd"


def test_stays_lazy() -> None:
    """PID 1 imports this: no socket/http/ssl/urllib until a URL needs them."""
    code = (
        "import sys\nimport entrypoint.supervise.steps.waits, entrypoint.supervise.steps.hooks\n"
        "bad = [m for m in ('socket', 'http.client', 'ssl', 'urllib.parse', 'subprocess', 'typing', "
        "'dataclasses', 'logging') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout.strip() == "[]"


def test_timeout_zero_means_forever_but_returns_when_up(tmp_path: Path) -> None:
    target = tmp_path / "x"
    timer = threading.Timer(0.2, target.touch)
    timer.start()
    try:
        wait_for([f"file://{target}"], timeout=0)
    finally:
        timer.cancel()
    assert os.path.exists(target)


# --- through the CLI: `entrypoint run --wait` ------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoint", "run", "--hooks-dir", "/nonexistent", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_wait_timeout_exits_69_naming_the_url() -> None:
    url = f"tcp://127.0.0.1:{free_port()}"
    proc = run_cli("--wait", url, "--wait-timeout", "0.5", "--", "echo", "started")
    assert proc.returncode == 69
    assert f"timed out after 0.5s waiting for: {url}" in proc.stderr
    assert "started" not in proc.stdout


def test_cli_wait_then_start(http_server: StatusServer, tmp_path: Path) -> None:
    target = tmp_path / "ready"
    target.touch()
    url = f"http://127.0.0.1:{http_server.server_address[1]}/"
    proc = run_cli("--wait", url, "--wait", f"file://{target}", "--", "echo", "started")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "started\n"


def test_cli_bad_wait_url_is_a_usage_error() -> None:
    proc = run_cli("--wait", "ftp://example.com/", "--", "echo", "started")
    assert proc.returncode == 2
    assert "unsupported URL" in proc.stderr
    assert "started" not in proc.stdout
