"""``run --services-dir``: services' output framed end to end, through PID 1's stdout and stderr."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.pid1_helpers import PROGS, Runtime, needs_ns, run_ns
from tests.services_helpers import PY, service, wait_service

pytestmark = [needs_ns, pytest.mark.timeout(60)]

WRITER = PROGS / "line_writer.py"


def _check(lines: list[bytes], name: str, tag: str, stream: str, count: int) -> None:
    """Every line of service NAME, in order, whole: prefix, tag, number, its own length."""
    prefix = f"{name} | ".encode()
    mine = [line for line in lines if line.startswith(prefix)]
    assert len(mine) == count
    for number, line in enumerate(mine):
        body = line[len(prefix):].decode()
        got_tag, got_stream, got_number, size, _ = body.split(" ", 4)
        assert (got_tag, got_stream, int(got_number)) == (tag, stream, number)
        assert len(body) == int(size)


def run_until_down(tmp_path: Path, services: Path, names: tuple[str, ...]) -> tuple[int, bytes, bytes]:
    """No COMMAND: `run` stays up once its services ended (cli.md), so stop it when the state file
    says each is down; stdout and stderr go to files, read afterwards (no pipe to fill up)."""
    st, out_path, err_path = tmp_path / "state.json", tmp_path / "out", tmp_path / "err"
    with out_path.open("wb") as out, err_path.open("wb") as err, \
            Runtime(["--services-dir", str(services), "--state-file", str(st)], stdout=out, stderr=err) as rt:
        for name in names:
            wait_service(st, name, "down", timeout=40)
        rt.signal(signal.SIGTERM)
        code = rt.wait(20)
    return code, out_path.read_bytes(), err_path.read_bytes()


def test_two_services_writing_half_lines_at_once_never_mix(tmp_path: Path) -> None:
    services = tmp_path / "s"
    for name, tag in (("alpha", "A"), ("beta", "B")):
        service(services, name, f"exec {PY} {WRITER} fragments {tag} 150\n", restart="no\n")
    code, stdout, stderr = run_until_down(tmp_path, services, ("alpha", "beta"))
    assert code == 0, stderr[-2000:]
    out, err = stdout.splitlines(), stderr.splitlines()
    for name, tag in (("alpha", "A"), ("beta", "B")):
        _check(out, name, tag, "out", 150)
        _check(err, name, tag, "err", 150)
    assert all(line.startswith((b"alpha | ", b"beta | ")) for line in out)


def test_a_line_of_megabytes_goes_out_in_pieces_and_a_partial_line_gets_its_newline(tmp_path: Path) -> None:
    services = tmp_path / "s"
    service(services, "big", f"exec {PY} {WRITER} big 200000\n", restart="no\n")
    service(services, "part", f"exec {PY} {WRITER} partial no-newline\n", restart="no\n")
    code, stdout, stderr = run_until_down(tmp_path, services, ("big", "part"))
    assert code == 0, stderr
    lines = stdout.splitlines()
    pieces = [line for line in lines if line.startswith(b"big | ")]
    assert [len(p) - len(b"big | ") for p in pieces] == [65536, 65536, 65536, 200000 - 3 * 65536]
    assert b"part | no-newline" in lines


def test_the_apps_output_is_not_prefixed(tmp_path: Path) -> None:
    services = tmp_path / "s"
    service(services, "svc", "echo from the service\nexec sleep 60\n")
    done = run_ns(["--services-dir", str(services), "--", "echo", "from the app"])
    assert done.returncode == 0, done.stderr
    assert b"from the app" in done.stdout.splitlines()
