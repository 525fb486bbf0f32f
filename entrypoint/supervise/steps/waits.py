"""``--wait URL``: hold the start until the app's dependencies answer.

Schemes (as dockerize ``-wait``):

- ``tcp://host:port`` (also ``tcp4://``, ``tcp6://``): a TCP connect succeeds;
- ``unix:///path``: a stream connect to that Unix socket is accepted (a socket
  file left behind by a server that died refuses, so it is not up);
- ``http://…``, ``https://…``: a GET answers with a status below 400 (2xx, and 3xx
  too: redirects are not followed, a redirect proves the server is up).  HTTPS
  verifies the certificate against the system CAs unless ``insecure`` is set;
- ``file:///path``: the path exists.

All URLs share one deadline.  Probes run one after the other in rounds, with a
backoff of 50 ms doubling to 1 s between rounds; a probe never blocks beyond the
deadline.  There is no busy loop and no thread: PID 1 may call this with its
signals blocked.  Standard library only; :mod:`socket`, :mod:`http.client` and
:mod:`ssl` are imported only when a URL needs them.
"""

from __future__ import annotations

import math
import os
import time

from entrypoint import log
from entrypoint.errors import UsageError, WaitTimeout

TYPE_CHECKING = False  # not `typing`: one import less in PID 1
if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_TIMEOUT = 60.0
FIRST_INTERVAL = 0.05
MAX_INTERVAL = 1.0
MAX_PROBE_TIMEOUT = 5.0

SCHEMES = ("tcp", "tcp4", "tcp6", "unix", "http", "https", "file")
DEFAULT_PORTS = {"http": 80, "https": 443}
#: sun_path of struct sockaddr_un on Linux: a longer socket path cannot be connected to at all.
MAX_UNIX_PATH = 108


class Target:
    """One parsed ``--wait`` URL.  ``shown`` is the URL with any password removed.

    A plain slotted class: :mod:`dataclasses` would pull :mod:`inspect` into PID 1.
    """

    __slots__ = ("host", "path", "port", "scheme", "shown", "url", "userinfo")

    def __init__(
        self,
        url: str,
        shown: str,
        scheme: str,
        host: str = "",
        port: int = 0,
        path: str = "",
        userinfo: str = "",
    ) -> None:
        self.url = url
        self.shown = shown
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.userinfo = userinfo

    def __repr__(self) -> str:
        return f"Target({self.shown!r})"


def _redact(url: str, userinfo: str) -> str:
    if not userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return url.replace(userinfo + "@", f"{user}:***@" if ":" in userinfo else f"{user}@", 1)


def _split_hostport(netloc: str, url: str, default_port: int | None) -> tuple[str, int]:
    if netloc.startswith("["):
        host, sep, rest = netloc[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError(f"--wait {url}: bad IPv6 address (use [addr]:port)")
        port_text = rest[1:]
    else:
        host, _, port_text = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
    if not host:
        raise UsageError(f"--wait {url}: no host")
    if not port_text:
        if default_port is None:
            raise UsageError(f"--wait {url}: no port (expected host:port)")
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"--wait {url}: bad port {port_text!r}")
    return host, int(port_text)


def parse_wait_url(url: str) -> Target:
    """Parse and validate one ``--wait`` value; a bad one is a usage error (exit 2)."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise UsageError(
            f"--wait {url}: unsupported URL; expected tcp://HOST:PORT, http(s)://HOST[:PORT][/PATH], "
            "unix:///SOCKET or file:///PATH"
        )
    netloc, slash, tail = rest.partition("/")
    path = slash + tail
    if scheme in ("file", "unix"):
        if netloc not in ("", "localhost") or not path:
            raise UsageError(f"--wait {url}: expected {scheme}:///ABSOLUTE/PATH")
        if scheme == "unix" and len(os.fsencode(path)) > MAX_UNIX_PATH:
            raise UsageError(f"--wait {url}: a Unix socket path is at most {MAX_UNIX_PATH} bytes")
        return Target(url, url, scheme, path=path)
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        userinfo, hostport = "", netloc
    shown = _redact(url, userinfo)
    if userinfo and scheme not in ("http", "https"):
        raise UsageError(f"--wait {shown}: credentials are only allowed in http(s) URLs")
    if scheme.startswith("tcp") and path not in ("", "/"):
        raise UsageError(f"--wait {url}: a tcp URL has no path")
    host, port = _split_hostport(hostport, shown, DEFAULT_PORTS.get(scheme))
    path = path.split("#", 1)[0] or "/"
    return Target(url, shown, scheme, host=host, port=port, path=path, userinfo=userinfo)


# --- probes: each returns True when the dependency is up ----------------------


def _probe_tcp(t: Target, timeout: float) -> bool:
    import socket

    family = {"tcp4": socket.AF_INET, "tcp6": socket.AF_INET6}.get(t.scheme, 0)
    try:
        infos = socket.getaddrinfo(t.host, t.port, family, socket.SOCK_STREAM)
    except OSError:
        return False  # name not resolvable yet (the service may not be registered yet)
    for fam, kind, proto, _, addr in infos:
        with socket.socket(fam, kind, proto) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(addr)
            except OSError:
                continue
            return True
    return False


def _probe_unix(t: Target, timeout: float) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(t.path)
        except OSError:
            return False
    return True


def _probe_file(t: Target, timeout: float) -> bool:
    return os.path.lexists(t.path)


def _probe_http(t: Target, timeout: float, insecure: bool) -> bool:
    import http.client

    conn: http.client.HTTPConnection
    if t.scheme == "https":
        import ssl

        context = ssl.create_default_context()
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(t.host, t.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(t.host, t.port, timeout=timeout)
    headers = {"User-Agent": "entrypoint-wait", "Connection": "close"}
    if t.userinfo:
        import base64
        from urllib.parse import unquote

        raw = ":".join(unquote(p) for p in t.userinfo.split(":", 1))
        headers["Authorization"] = "Basic " + base64.b64encode(raw.encode()).decode("ascii")
    try:
        conn.request("GET", t.path, headers=headers)
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return 200 <= status < 400


def probe(t: Target, timeout: float, insecure: bool = False) -> bool:
    """One attempt, bounded by *timeout* seconds."""
    if t.scheme in ("http", "https"):
        return _probe_http(t, timeout, insecure)
    if t.scheme == "unix":
        return _probe_unix(t, timeout)
    if t.scheme == "file":
        return _probe_file(t, timeout)
    return _probe_tcp(t, timeout)


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


def wait_for(
    urls: list[str],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    insecure: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once every URL is up; raise :class:`WaitTimeout` naming those that are not.

    ``timeout`` is one overall deadline in seconds; 0 means wait forever.
    ``sleep`` pauses between rounds: PID 1 can pass a function that waits on
    its blocked stop signals (``signal.sigtimedwait``) and raises, so that a
    stop during a long wait ends it at once.
    """
    if timeout < 0 or math.isnan(timeout):
        raise UsageError(f"--wait-timeout must be >= 0 (0 waits forever), got {timeout}")
    targets = [parse_wait_url(u) for u in urls]
    if not targets:
        return
    deadline = math.inf if timeout == 0 else time.monotonic() + timeout
    pending = targets
    interval = FIRST_INTERVAL
    for t in pending:
        log.info(f"waiting for {t.shown}")
    while True:
        still: list[Target] = []
        for t in pending:
            left = deadline - time.monotonic()
            if left <= 0 or not probe(t, min(left, MAX_PROBE_TIMEOUT), insecure):
                still.append(t)
            else:
                log.info(f"up: {t.shown}")
        pending = still
        if not pending:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            names = ", ".join(t.shown for t in pending)
            raise WaitTimeout(f"timed out after {_format_seconds(timeout)} waiting for: {names}")
        sleep(min(interval, left))
        interval = min(interval * 2, MAX_INTERVAL)
