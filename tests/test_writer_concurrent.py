"""Two writers in one directory (issue 22): a live render's staged file is never another's to delete.

Real ``entrypoint render`` processes, started together, into one output
directory; a render stopped (SIGSTOP) while its temp file is staged, which
another render must leave alone, and then SIGKILLed, whose temp file the next
render must remove.  Each destination must always be one writer's whole file.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.pid1_helpers import base_env, needs_ns, state_of, wait_until

pytestmark = pytest.mark.timeout(240)

N_FILES = 16
FILLER = b"x" * 63 + b"\n"  # 64 KiB of it per file


def temps(root: Path) -> list[Path]:
    return sorted(root.rglob(".entrypoint-*"))


def rendered(generation: str, i: int, copies: int = 1024) -> bytes:
    return f"gen={generation} file={i}\n".encode() + FILLER * copies + f"end={generation}\n".encode()


def make_templates(tdir: Path, count: int, copies: int = 1024) -> None:
    tdir.mkdir()
    for i in range(count):
        body = FILLER * copies
        (tdir / f"f{i}.conf.tmpl").write_bytes(b"gen=${GEN} file=%d\n" % i + body + b"end=${GEN}\n")


def render_cmd(tdir: Path, out: Path, namespaced: bool = False) -> list[str]:
    head = ["unshare", "--pid", "--fork", "--mount-proc"] if namespaced else []
    return [*head, sys.executable, "-m", "entrypoint", "render", "--templates-dir", str(tdir),
            "--output-dir", str(out)]


def start(tdir: Path, out: Path, generation: str, namespaced: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen(render_cmd(tdir, out, namespaced), env=base_env(GEN=generation),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[bytes], what: str) -> None:
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 0, f"{what}: exit {proc.returncode}: {err.decode()}"


def assert_whole(out: Path, generations: set[str], count: int = N_FILES, copies: int = 1024) -> set[str]:
    """Every destination is exactly one of ``generations``' files; returns those seen."""
    seen: set[str] = set()
    for i in range(count):
        data = (out / f"f{i}.conf").read_bytes()
        generation = data.split(b" ", 1)[0].removeprefix(b"gen=").decode()
        assert generation in generations, f"f{i}.conf: generation {generation!r}"
        assert data == rendered(generation, i, copies), f"f{i}.conf is not one writer's whole file"
        seen.add(generation)
    return seen


def race_rounds(tmp_path: Path, rounds: int, namespaced: bool) -> set[str]:
    tdir = tmp_path / "templates"
    make_templates(tdir, N_FILES)
    shared = tmp_path / "shared"
    seen: set[str] = set()
    for n in range(rounds):
        # odd rounds: a directory neither has seen yet, so both also race to create it
        out = shared if n % 2 == 0 else tmp_path / f"fresh{n}" / "out"
        gens = (f"a{n}", f"b{n}")
        procs = [start(tdir, out, gen, namespaced) for gen in gens]
        for gen, proc in zip(gens, procs, strict=True):
            finish(proc, f"round {n}, render {gen}")
        seen |= assert_whole(out, set(gens))
        assert temps(tmp_path) == [], f"round {n}: temp files left"
    return seen


def test_two_renders_into_one_directory_at_once(tmp_path: Path) -> None:
    """200 rounds of two renders started together: both succeed, no file is torn or mixed."""
    seen = race_rounds(tmp_path, 200, namespaced=False)
    assert any(g.startswith("a") for g in seen) and any(g.startswith("b") for g in seen)


@needs_ns
def test_two_renders_from_different_pid_namespaces(tmp_path: Path) -> None:
    """Containers sharing a volume: each writer is in its own PID namespace (pids mean nothing)."""
    race_rounds(tmp_path, 20, namespaced=True)


# -- a render stopped, then killed, with its temp file staged --------------------------------------

BIG_FILES = 24
BIG_COPIES = 8192  # 512 KiB per file: the stopped render is caught while staging


def locked(temp: Path) -> bool:
    """Whether someone holds a lock on ``temp`` (our shared probe is refused); a gone file is not."""
    try:
        fd = os.open(temp, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def stop_while_staged(tdir: Path, out: Path, generation: str) -> tuple[subprocess.Popen[bytes], list[Path]]:
    """Start a render and SIGSTOP it as soon as a temp file of its shows; returns it and its temps.

    A catch counts once the render is really stopped (the signal is asynchronous) and each of its
    temp files is locked.  Caught between creating one and locking it, the render would rightly
    lose that name to the next render's cleanup (and take another once continued): then it is
    continued and caught again a moment later.
    """
    deadline = time.monotonic() + 60
    proc = start(tdir, out, generation)
    while time.monotonic() < deadline:
        if proc.poll() is not None:  # finished before a catch: it left nothing; again
            assert proc.returncode == 0 and temps(out) == []
            proc = start(tdir, out, generation)
        if not temps(out):
            continue  # busy poll: the staging phase lasts milliseconds
        os.kill(proc.pid, signal.SIGSTOP)
        wait_until(lambda pid=proc.pid: state_of(pid) in ("stopped", "zombie", None), 10,
                   "the render to stop")
        staged = temps(out)
        if staged and proc.poll() is None and all(locked(temp) for temp in staged):
            return proc, staged
        os.kill(proc.pid, signal.SIGCONT)
    proc.kill()
    proc.communicate(timeout=30)
    pytest.fail("never caught the render with a temp file staged")


@pytest.mark.parametrize("then", ["continue", "kill"])
def test_a_render_beside_a_stopped_one(tmp_path: Path, then: str) -> None:
    """The stopped render is alive: its staged file stays, and it succeeds once continued.
    Killed instead, its leftover is removed by the next render."""
    tdir, out = tmp_path / "templates", tmp_path / "out"
    make_templates(tdir, BIG_FILES, BIG_COPIES)
    out.mkdir()
    for round_ in range(3):
        stopped, staged = stop_while_staged(tdir, out, f"s{round_}")
        try:
            beside = subprocess.run(render_cmd(tdir, out), env=base_env(GEN=f"y{round_}"),
                                    stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
            assert beside.returncode == 0, beside.stderr.decode()
            assert all(temp.exists() for temp in staged), "the live render's staged file was deleted"
        finally:
            os.kill(stopped.pid, signal.SIGKILL if then == "kill" else signal.SIGCONT)
        if then == "continue":
            finish(stopped, "the stopped render, continued")
            assert temps(out) == []
        else:
            stopped.communicate(timeout=30)
            assert temps(out), "the killed render left no temp file to clean"
            final = subprocess.run(render_cmd(tdir, out), env=base_env(GEN=f"z{round_}"),
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
            assert final.returncode == 0, final.stderr.decode()
            assert temps(out) == [], "the dead render's temp file was not removed"
            assert assert_whole(out, {f"z{round_}"}, BIG_FILES, BIG_COPIES) == {f"z{round_}"}
        # continued: each file is the stopped render's or the one beside it, whole
        assert_whole(out, {f"s{round_}", f"y{round_}", f"z{round_}"}, BIG_FILES, BIG_COPIES)


# -- the writer itself, in two processes at full speed ---------------------------------------------

LOOP = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from entrypoint.render.writer import RenderedFile, stage_all, write_all
    root, tag, mode = Path(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
    for n in range(int(sys.argv[4])):
        dest = root / f"d{n}" / "sub" / "x.conf"
        files = [RenderedFile(dest, tag * 4096 + b"%d" % n, create_dirs_under=root)]
        if mode == "abort":
            stage_all(files).abort()  # removes the directories it created, if still empty
        else:
            write_all(files)
    """
)


def test_a_writer_beside_one_that_creates_and_removes_the_same_directories(tmp_path: Path) -> None:
    """One writer creates d{n}/sub and removes it again (an aborted render); the other writes
    into the same new directories at once: it never fails on a directory created or removed
    under it."""
    root = tmp_path / "root"
    root.mkdir()
    env = base_env()
    count = "400"
    procs = [subprocess.Popen([sys.executable, "-c", LOOP, str(root), tag, mode, count], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for tag, mode in (("A", "abort"), ("B", "write"), ("C", "write"))]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    for n in range(int(count)):
        data = (root / f"d{n}" / "sub" / "x.conf").read_bytes()
        assert data in (b"B" * 4096 + b"%d" % n, b"C" * 4096 + b"%d" % n)
    assert temps(root) == []


# -- where locks cannot tell: someone else's temp file that cannot be opened ------------------------

def test_a_temp_file_that_cannot_be_probed_is_removed_only_when_old(tmp_path: Path) -> None:
    """A non-root render cannot open a root render's 0600 temp file to test its lock: it leaves
    it alone unless it is older than the stale age."""
    if os.geteuid() != 0:
        pytest.skip("needs root to play two users")
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(out, 0o777)
    young, old = out / ".entrypoint-a.conf-000001.tmp", out / ".entrypoint-b.conf-000002.tmp"
    for temp in (young, old):
        temp.write_bytes(b"half")
        os.chmod(temp, 0o600)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    # imports and chdir first: nobody may not read the interpreter's files or pass pytest's 0700 base
    script = ("import os, sys\n"
              "from entrypoint.render.writer import remove_leftovers\n"
              "os.chdir(sys.argv[1]); os.setgid(65534); os.setuid(65534)\n"
              "print(remove_leftovers('.'))\n")
    done = subprocess.run([sys.executable, "-c", script, str(out)], env=base_env(), capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert young.exists() and not old.exists()


def test_many_files_beyond_a_low_soft_open_file_limit(tmp_path: Path) -> None:
    """Each staged file holds its lock on an open descriptor until it is renamed: a render of
    more files than the soft RLIMIT_NOFILE raises that limit (up to the hard one) and succeeds."""
    script = textwrap.dedent(
        """
        import resource, sys
        from pathlib import Path
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        from entrypoint.render.writer import RenderedFile, write_all
        root = Path(sys.argv[1])
        print(len(write_all([RenderedFile(root / f"f{i}.conf", b"%d" % i) for i in range(200)])))
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=base_env(), capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "200"
    assert all((tmp_path / f"f{i}.conf").read_bytes() == b"%d" % i for i in range(200))
    assert temps(tmp_path) == []


def test_more_files_than_the_hard_open_file_limit_is_a_clean_error(tmp_path: Path) -> None:
    """Beyond the hard limit: one line, nothing written, no temp file left."""
    script = textwrap.dedent(
        """
        import resource, sys
        from pathlib import Path
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        from entrypoint.errors import OutputError
        from entrypoint.render.writer import RenderedFile, write_all
        root = Path(sys.argv[1])
        try:
            write_all([RenderedFile(root / f"f{i}.conf", b"%d" % i) for i in range(200)])
        except OutputError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=base_env(), capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(": cannot create a temporary file: Too many open files\n"), done.stdout
    assert list(tmp_path.iterdir()) == []
