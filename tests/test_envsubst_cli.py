"""`entrypoint envsubst` as a process: options, messages, I/O errors, streaming.

GNU envsubst is the oracle wherever behaviour must match (it is started with
argv[0] ``envsubst`` so its messages carry the same program name as ours).
Help and version name our program honestly, so they are compared by
structure instead.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.streaming import stream_envsubst

GNU = "/usr/bin/envsubst"
OURS = [sys.executable, "-m", "entrypoint", "envsubst"]
ENV = {"FOO": "foo", "BAR": "bar"}
needs_gnu = pytest.mark.skipif(not os.path.exists(GNU), reason="GNU envsubst not installed")


def ours(
    args: list[str], data: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*OURS, *args], input=data, env=ENV if env is None else env, capture_output=True, timeout=60
    )


def gnu(
    args: list[str], data: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["envsubst", *args],
        executable=GNU,
        input=data,
        env=ENV if env is None else env,
        capture_output=True,
        timeout=60,
    )


def same(a: subprocess.CompletedProcess[bytes], b: subprocess.CompletedProcess[bytes]) -> None:
    assert (a.stdout, a.returncode, a.stderr) == (b.stdout, b.returncode, b.stderr)


# --- options and messages -------------------------------------------------------------------


@needs_gnu
@pytest.mark.parametrize(
    "args",
    [
        ["-x"],
        ["-vx", "$A"],
        ["--bogus"],
        ["--bogus=1"],
        ["--v"],
        ["--v=1"],
        ["--variables=x"],
        ["--help=x"],
        ["--help="],
        ["--=x"],
        ["-h", "-x"],
        ["-x", "-h"],
        ["$A", "$B"],
        ["-v"],
        ["-v", "a", "b"],
        ["--", "-v", "$A"],
        ["-v", "--", "-x"],
        ["-"],
        ["--var", "$A ${B} $A"],
        ["--variables", ""],
        ["-vv", "$Y"],
        ["$FOO", "-v"],
        ["--", "-$BAR"],
        ["--", "--", "$FOO"],
        ["-v", "$A", "-x"],
        ["-v", "x${Y}z$1${Z:-q}"],
        ["-é"],
        ["--é"],
        ["-:"],
        ["$FOO", "--"],
        ["--", "$FOO", "-v"],
    ],
)
def test_arguments_and_messages_match_gnu(args: list[str]) -> None:
    data = b"$FOO ${BAR} $BAZ\n"
    same(ours(args, data), gnu(args, data))


@needs_gnu
def test_posixly_correct_disables_permutation_like_gnu() -> None:
    env = {**ENV, "POSIXLY_CORRECT": "1"}
    for args in (["$FOO", "-v"], ["-v", "$FOO"], ["$FOO", "-x"]):
        same(ours(args, b"$FOO\n", env), gnu(args, b"$FOO\n", env))


@needs_gnu
@pytest.mark.parametrize(
    "args,shown",
    [
        (["-h"], "help"),
        (["--help"], "help"),
        (["--he"], "help"),
        (["-vh", "$A"], "help"),
        (["-V"], "version"),
        (["--version"], "version"),
        (["--vers"], "version"),
        (["-hV"], "version"),
        (["-Vh"], "version"),
        (["-v", "-V"], "version"),
        (["-h", "$A", "$B"], "help"),
    ],
)
def test_help_and_version_precedence(args: list[str], shown: str) -> None:
    result = ours(args)
    assert result.returncode == gnu(args).returncode == 0
    first = result.stdout.splitlines()[0]
    assert first.startswith(b"Usage: " if shown == "help" else b"envsubst (entrypoint) ")
    assert result.stderr == b""


@needs_gnu
def test_help_mirrors_gnu_text() -> None:
    mine, theirs = ours(["--help"]).stdout.splitlines(), gnu(["--help"]).stdout.splitlines()
    assert mine[0] == b"Usage: entrypoint envsubst [OPTION] [SHELL-FORMAT]"
    # Everything between the usage line and the bug-report footer is GNU's text.
    assert mine[1:-3] == theirs[1:-3]


def test_version_names_our_program() -> None:
    out = ours(["--version"]).stdout.decode()
    assert out.startswith("envsubst (entrypoint) ")
    assert "GNU gettext-runtime) 0.21" in out


# --- I/O errors ------------------------------------------------------------------------------

# CPython refuses to start when fd 0 is a directory ("Fatal Python error: init_sys_streams:
# <stdin> is a directory"), before any of our code runs: same exit code 1, different text.
# Our own read-error path is proven by handing it the directory after start-up.
DIR_STDIN_AFTER_START = (
    "import os, sys\n"
    "os.dup2(os.open('/', os.O_RDONLY), 0)\n"
    "from entrypoint.cli import main\n"
    "sys.exit(main(['envsubst', *sys.argv[1:]]))\n"
)


@needs_gnu
def test_directory_on_stdin_read_error_matches_gnu() -> None:
    fd = os.open("/", os.O_RDONLY)
    try:
        theirs = subprocess.run(
            ["envsubst"], executable=GNU, stdin=fd, env=ENV, capture_output=True, timeout=60
        )
        interpreter = subprocess.run(OURS, stdin=fd, env=ENV, capture_output=True, timeout=60)
    finally:
        os.close(fd)
    mine = subprocess.run(
        [sys.executable, "-c", DIR_STDIN_AFTER_START], env=ENV, capture_output=True, timeout=60
    )
    same(mine, theirs)
    assert mine.stderr == b'envsubst: error while reading "standard input": Is a directory\n'
    assert interpreter.returncode == theirs.returncode == 1


def _via_bash(argv: list[str], redirect: str, data: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run argv with a shell redirection (closing fds is what bash does best)."""
    return subprocess.run(
        ["bash", "-c", f'exec "$@" {redirect}', "bash", *argv],
        input=data,
        env=ENV,
        capture_output=True,
        timeout=60,
    )


@needs_gnu
@pytest.mark.parametrize("redirect", ["<&-", ">&-", ">/dev/full"])
@pytest.mark.parametrize(
    "args,data",
    [
        ([], b"$FOO\n"),
        ([], b""),
        (["-v", "$A"], b""),
        (["-v", ""], b""),
        (["--help"], b""),
        (["--version"], b""),
        (["$FOO"], b"x" * 300_000),
    ],
)
def test_closed_and_full_descriptors_match_gnu(redirect: str, args: list[str], data: bytes) -> None:
    gnu_argv = ["bash", "-c", f'exec -a envsubst {GNU} "$@" {redirect}', "bash", *args]
    theirs = subprocess.run(gnu_argv, input=data, env=ENV, capture_output=True, timeout=60)
    mine = _via_bash([*OURS, *args], redirect, data)
    if args == ["--help"] or args == ["--version"]:
        assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr)
    else:
        same(mine, theirs)


def test_dev_full_message() -> None:
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            OURS, input=b"$FOO\n", stdout=full, stderr=subprocess.PIPE, env=ENV, timeout=60
        )
    assert result.returncode == 1
    assert result.stderr == b"envsubst: write error: No space left on device\n"


@needs_gnu
def test_broken_pipe_kills_with_sigpipe_like_gnu(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.write_bytes(b"$FOO and ${BAR}\n" * 400_000)
    codes = []
    for argv, exe in ((OURS, None), (["envsubst"], GNU)):
        with src.open("rb") as stdin:
            proc = subprocess.Popen(
                argv, executable=exe, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
            )
            assert proc.stdout is not None and proc.stderr is not None
            assert proc.stdout.read(10) == b"foo and ba"
            proc.stdout.close()
            codes.append((proc.wait(timeout=60), proc.stderr.read()))
            proc.stderr.close()
    assert codes[0] == codes[1] == (-signal.SIGPIPE, b"")


# --- bytes -----------------------------------------------------------------------------------


@needs_gnu
@pytest.mark.parametrize(
    "data",
    [
        b"a\x00$FOO\x00${BAR}\x00\n",
        b"\xff$FOO\xfe ${BAR}\xc3\n",
        b"no newline $FOO",
        b"crlf $FOO\r\n${BAR}\r\n",
        b"",
        b"$",
        b"${",
        b"${FOO",
        b"$FOO\xff\xfe\x00",
    ],
)
def test_bytes_pass_through_like_gnu(data: bytes) -> None:
    env = {"FOO": "f\xe9", "BAR": "b"}  # encoded with the filesystem encoding, as os.environb sees it
    same(ours([], data, env), gnu([], data, env))


@needs_gnu
def test_non_utf8_environment_and_format() -> None:
    env = {b"FOO": b"\xff\xfe", b"BAR": b"\xc3("}
    args = [b"$FOO \xff ${BAR}"]
    data = b"$FOO ${BAR} \xff$FOO\n"
    mine = subprocess.run(
        [*map(os.fsencode, OURS), *args], input=data, env=env, capture_output=True, timeout=60
    )
    theirs = subprocess.run(
        [b"envsubst", *args], executable=GNU, input=data, env=env, capture_output=True, timeout=60
    )
    same(mine, theirs)
    assert mine.stdout == b"\xff\xfe \xc3( \xff\xff\xfe\n"


# --- big streaming input, bounded memory -------------------------------------------------------

BLOCK = b"a $FOO ${BAR}$UNSET. ${FOO:-x} $$FOO $1 " * 64  # no newline: one 50 MB line
BLOCK_OUT = b"a foo bar. ${FOO:-x} $foo $1 " * 64
TOTAL = 50 * 1024 * 1024


def test_50mb_single_line_streams_in_bounded_memory() -> None:
    """50 MB through a pipe, one line; the child's peak RSS stays far below 64 MiB."""
    repeats = TOTAL // len(BLOCK)
    out = stream_envsubst(BLOCK, repeats, b"tail $FOO", len(BLOCK_OUT), ENV)
    expected = hashlib.sha256()
    for _ in range(repeats):
        expected.update(BLOCK_OUT)
    expected.update(b"tail foo")
    assert out.sha256 == expected.hexdigest()
    assert out.peak_kib < 40 * 1024, f"peak RSS {out.peak_kib} KiB"
    print(f"child peak RSS {out.peak_kib} KiB")
