"""Which standard-library modules the commands import: the measurement behind ``stdlib.txt``.

Runs every command of the CLI (run with each wait kind, --watch, hooks, secrets; render and check
of envsubst, shell and Jinja templates with the typed views; env in every format; envsubst;
status with and without psutil) under ``python -X importtime`` and prints the union of the
standard-library modules they imported, one a line.  ``stdlib.txt`` is this output plus a safety
margin; ``scripts/bundle`` ships only what that file names.

    python bundle/measure_imports.py > /tmp/measured.txt
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _importtime(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def _run(args: list[str], cwd: Path, env: dict[str, str], seconds: float | None = None) -> set[str]:
    argv = [sys.executable, "-X", "importtime", "-m", "entrypoint", *args]
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    if seconds is None:
        _, err = proc.communicate(timeout=60)
        print(f"exit {proc.returncode}: {' '.join(args)[:100]}", file=sys.stderr)
    else:
        time.sleep(seconds)  # a --watch command: give it time to import its watcher, then stop it
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    return _importtime(err)


def _http_server() -> int:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


def _commands(tmp: Path) -> list[tuple[list[str], float | None]]:
    ref = REPO / "examples/reference-deployment"
    jvm = REPO / "examples/jvm"
    (tmp / "a.conf.template").write_text("a=${A:-1}\n")
    (tmp / "b.j2").write_text("{{ env.get('B', 2) }}\n")
    (tmp / "c.sh.template").write_text("c=${C:-3}\n")
    (tmp / "hooks").mkdir()
    (tmp / "hooks/10-a.sh").write_text("#!/bin/sh\ntrue\n")
    (tmp / "hooks/10-a.sh").chmod(0o755)
    (tmp / "hooks/20-b.envsh").write_text("export HOOKED=1\n")
    (tmp / "hooks/20-b.envsh").chmod(0o755)
    (tmp / "ready").write_text("")
    (tmp / "secret").write_text("s3cret\n")
    (tmp / "app.env").write_text("E=1\n")
    unix = tmp / "sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(unix))
    listener.listen()
    tcp = socket.create_server(("127.0.0.1", 0))
    port = _http_server()
    state = tmp / "state.json"
    state.write_text(json.dumps({"version": 1, "runtime_pid": os.getpid(), "phase": "running",
                                 "app": {"pid": None, "restarts": 0, "last_exit_code": None, "command": []},
                                 "changed_at": time.time()}))
    templates = [str(p) for p in sorted((ref / "templates").rglob("*")) if p.is_file()]
    marathon = ["--marathon-app", str(ref / "app.json"), "--ports", "31000"]
    library = [str(REPO / "templates/json/task.json.j2"), str(REPO / "templates/env/app.env.j2"),
               str(REPO / "templates/java/jvm.options.j2")]
    out = str(tmp / "out")
    return [
        (["--version"], None), (["--help"], None),
        (["render", "--clean-env", *marathon, "--output-dir", out, *templates], None),
        (["render", "--clean-env", "--marathon-app", str(jvm / "app.json"), "--ports", "31200",
          *[str(p) for p in (jvm / "templates").rglob("*.j2")]], None),
        (["render", "--syntax", "shell", str(tmp / "c.sh.template")], None),
        (["render", str(tmp / "a.conf.template"), str(tmp / "b.j2")], None),
        (["render", "--watch", "--output-dir", out, str(tmp / "b.j2")], 3.0),
        (["check", "--clean-env", *marathon, *templates], None),
        (["render", "--clean-env", "--marathon-app", str(jvm / "app.json"), "--ports", "31200",
          "--output-dir", out, *library], None),
        (["check", "--clean-env", "--marathon-app", str(jvm / "app.json"), "--ports", "31200", *library], None),
        (["check", str(tmp / "b.j2"), str(tmp / "missing.j2")], None),
        (["check", "--watch", str(tmp / "b.j2")], 3.0),
        (["env", "--clean-env", *marathon], None),
        (["env", "--format", "shell", "--env-file", str(tmp / "app.env")], None),
        (["env", "--format", "dotenv", "--mesos-env", *marathon], None),
        (["envsubst", "--help"], None), (["envsubst", "-v", "$A ${B}"], None),
        (["status", "--state-file", str(state)], None),
        (["status", "--state-file", str(tmp / "none")], None),
        (["status", "--json", "--state-file", str(state)], None),
        (["run", "--state-file", "", "--", "true"], None),
        (["run", "--state-file", str(tmp / "run-state.json"), "--hooks-dir", str(tmp / "hooks"),
          "--template", f"{tmp / 'b.j2'}:{tmp / 'b.out'}", "--template", f"{tmp / 'a.conf.template'}:{tmp / 'a'}",
          "--env-file", str(tmp / "app.env"), "--secret", "S", "--expand-args", "--log-file", str(tmp / "log"),
          "--termination-log", str(tmp / "term"), "--restart", "on-failure", "--remap-exit", "3",
          "--wait", f"http://127.0.0.1:{port}/", "--wait", f"tcp://127.0.0.1:{tcp.getsockname()[1]}",
          "--wait", f"file://{tmp / 'ready'}", "--wait", f"unix://{unix}",
          "--", "sh", "-c", "echo $HOOKED"], None),
        (["run", "--wait", "https://127.0.0.1:1/", "--wait-timeout", "0.5", "--", "true"], None),
        (["run", "--watch", "--template", f"{tmp / 'b.j2'}:{tmp / 'w.out'}", "--", "sleep", "30"], 3.0),
        (["run", "--user", "nobody", "--", "true"], None),
        (["run", "--bogus"], None),
    ]


def main() -> None:
    ssl.create_default_context()  # the measuring process itself needs none of this; warms nothing
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "S_FILE": "", "ENTRYPOINT_STATE_FILE": ""}
    found: set[str] = set()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "secret").write_text("x\n")
        env["S_FILE"] = str(tmp / "secret")
        for args, seconds in _commands(tmp):
            found |= _run(args, tmp, env, seconds)
    stdlib = set(sys.stdlib_module_names)
    for module in sorted(m for m in found if m.split(".")[0] in stdlib):
        print(module)


if __name__ == "__main__":
    main()
