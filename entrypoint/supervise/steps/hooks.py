"""Pre-start hook scripts, following the official nginx image's ``/docker-entrypoint.d``.

The directory is walked in ``sort -V`` order (GNU ``filevercmp``, so ``9-b`` runs
before ``10-a``).  Executable ``*.sh`` files are run; executable ``*.envsh``
files are sourced by ``/bin/sh`` so that their exports reach the app; anything
else is skipped.  Like nginx's ``docker-entrypoint.sh`` (which runs under
``set -e``) a failing hook stops the start.

Standard library only and import-light: PID 1 imports this module.  Children
are started with ``fork``/``exec`` rather than :mod:`subprocess` so that they
get a clean signal mask and default dispositions even when the caller has
already blocked signals for its synchronous loop.
"""

from __future__ import annotations

import errno
import os
import signal

from entrypoint import log
from entrypoint.errors import HookError
from entrypoint.fdio import read_all
from entrypoint.supervise.parts.spawn import parse_environ

TYPE_CHECKING = False  # not `typing`: one import less in PID 1
if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_HOOKS_DIR = "/etc/entrypoint.d"

RUN_SUFFIX = ".sh"
SOURCE_SUFFIX = ".envsh"

# Variables a POSIX shell sets or updates by itself (dash: PWD, OLDPWD; bash
# also SHLVL and _).  A hook cannot change these through the env it hands
# back: they keep the value they had before the hook (or stay absent).
SHELL_MANAGED = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})

# `set -e` as in nginx's entrypoint.  The hook's own commands run with fd 3
# (our result pipe) closed, so nothing it starts can write to or hold it;
# afterwards `env -0` prints the exported environment, NUL-separated, on fd 3.
SOURCE_SCRIPT = 'set -e; . "$1" 3>&-; exec env -0 >&3 3>&-'
SHELL = "/bin/sh"

RESULT_FD = 3


# --- sort -V ---------------------------------------------------------------


def _order(s: bytes, pos: int) -> int:
    """Weight of one non-digit byte in GNU version order; end of string sorts before all but '~'."""
    if pos == len(s):
        return -1
    c = s[pos]
    if 0x30 <= c <= 0x39:
        return 0
    if (0x41 <= c <= 0x5A) or (0x61 <= c <= 0x7A):
        return c
    if c == 0x7E:  # '~'
        return -2
    return c + 256


def _isdigit(s: bytes, pos: int) -> bool:
    return pos < len(s) and 0x30 <= s[pos] <= 0x39


def _verrevcmp(a: bytes, b: bytes) -> int:
    """The Debian version comparison that gnulib's ``filevercmp`` is built on."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not _isdigit(a, i)) or (j < len(b) and not _isdigit(b, j)):
            ca, cb = _order(a, i), _order(b, j)
            if ca != cb:
                return ca - cb
            i += 1
            j += 1
        while i < len(a) and a[i] == 0x30:
            i += 1
        while j < len(b) and b[j] == 0x30:
            j += 1
        first_diff = 0
        while _isdigit(a, i) and _isdigit(b, j):
            if not first_diff:
                first_diff = a[i] - b[j]
            i += 1
            j += 1
        if _isdigit(a, i):
            return 1
        if _isdigit(b, j):
            return -1
        if first_diff:
            return first_diff
    return 0


def _isalpha(c: int) -> bool:
    return (0x41 <= c <= 0x5A) or (0x61 <= c <= 0x7A)


def _prefix_len(s: bytes) -> int:
    """Length of *s* without its longest ``(\\.[A-Za-z~][A-Za-z0-9~]*)*$`` suffix."""
    n = len(s)
    prefix = 0
    i = 0
    while i < n:
        if s[i] == 0x2E and i + 1 < n and (_isalpha(s[i + 1]) or s[i + 1] == 0x7E):
            i += 2
            while i < n and (_isalpha(s[i]) or _isdigit(s, i) or s[i] == 0x7E):
                i += 1
        else:
            i += 1
            prefix = i
    return prefix


def filevercmp(a: bytes, b: bytes) -> int:
    """gnulib ``filevercmp`` (coreutils 9.x), the comparison behind ``sort -V``."""
    if not a:
        return -1 if b else 0
    if not b:
        return 1
    if a[:1] == b"." or b[:1] == b".":
        if a[:1] != b[:1]:
            return -1 if a[:1] == b"." else 1
        for special in (b".", b".."):
            if a == special:
                return 0 if b == special else -1
            if b == special:
                return 1
    pa, pb = _prefix_len(a), _prefix_len(b)
    result = _verrevcmp(a[:pa], b[:pb])
    if result or (pa == len(a) and pb == len(b)):
        return result
    return _verrevcmp(a, b)


def sort_v_cmp(a: bytes, b: bytes) -> int:
    """``LC_ALL=C sort -V``: version order, ties broken bytewise like sort's last resort."""
    result = filevercmp(a, b)
    if result:
        return result
    return (a > b) - (a < b)


def version_sorted(names: list[str]) -> list[str]:
    import functools

    key = functools.cmp_to_key(sort_v_cmp)
    return sorted(names, key=lambda n: key(os.fsencode(n)))


# --- discovery ---------------------------------------------------------------


def _unreadable(exc: OSError) -> None:
    """A hook directory we cannot list must not silently mean "no hooks"."""
    raise HookError(f"cannot read hook directory {exc.filename}: {exc.strerror}")


def _walk_files(top: str) -> Iterator[str]:
    """Regular files below *top*, following symlinks (``find -follow -type f``), loop-safe."""
    seen: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(top, onerror=_unreadable, followlinks=True):
        try:
            st = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        for name in files:
            path = os.path.join(root, name)
            if os.path.isfile(path):
                yield path


def hook_files(hooks_dir: str) -> list[str]:
    """Every file of the hook directory, in the order nginx's ``find | sort -V`` gives."""
    if not os.path.isdir(hooks_dir):
        return []
    return version_sorted(list(_walk_files(os.path.abspath(hooks_dir))))


# --- running -----------------------------------------------------------------


def _reset_signals_in_child() -> None:
    """Default dispositions and an empty mask, as a fresh process would have."""
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass  # glibc-internal real-time signals cannot be touched
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def _exec_in_child(argv: list[str], env: dict[str, str], err_w: int, result_w: int | None) -> None:
    """Never returns: exec *argv*, or report errno on *err_w* and exit 127."""
    try:
        _reset_signals_in_child()
        if result_w is not None:
            if result_w != RESULT_FD:
                os.dup2(result_w, RESULT_FD)  # dup2 makes the copy inheritable
                os.close(result_w)
            else:
                os.set_inheritable(RESULT_FD, True)
        try:
            os.execve(argv[0], argv, env)
        except OSError as exc:
            if exc.errno != errno.ENOEXEC:
                raise
            # No shebang: run it with the shell, as a shell would.
            os.execve(SHELL, ["sh", *argv], env)
    except OSError as exc:
        os.write(err_w, str(exc.errno or 0).encode())
    finally:
        os._exit(127)


def _spawn(argv: list[str], env: dict[str, str], result_w: int | None = None) -> int:
    """Fork+exec *argv*; return its pid, or raise HookError when it cannot be executed."""
    err_r, err_w = os.pipe()  # close-on-exec: EOF without data means exec succeeded
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child side, ends in exec or _exit
            os.close(err_r)
            _exec_in_child(argv, env, err_w, result_w)
        os.close(err_w)
        err_w = -1
        report = read_all(err_r)
    finally:
        os.close(err_r)
        if err_w >= 0:
            os.close(err_w)
    if report:
        _wait(pid)
        code = int(report or b"0")
        raise HookError(f"hook {argv[-1]} could not be executed: {os.strerror(code)}")
    return pid


def _wait(pid: int) -> int:
    """Exit code of *pid*; a death by signal N is -N (as waitstatus_to_exitcode)."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _check(path: str, code: int) -> None:
    if code == 0:
        return
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        raise HookError(f"hook {path} failed with exit code {128 - code} (killed by {name})")
    raise HookError(f"hook {path} failed with exit code {code}")


def run_script(path: str, env: dict[str, str]) -> None:
    """Run an executable hook with *env*; stdio passes through."""
    _check(path, _wait(_spawn([path], env)))


def source_script(path: str, env: dict[str, str]) -> dict[str, str]:
    """Source *path* in ``/bin/sh`` and return the environment it exports."""
    result_r, result_w = os.pipe()
    try:
        try:
            pid = _spawn([SHELL, "-c", SOURCE_SCRIPT, "sh", path], env, result_w)
        finally:
            os.close(result_w)
        dump = read_all(result_r)
    finally:
        os.close(result_r)
    _check(path, _wait(pid))
    return _merge_env(env, parse_environ(dump))


def _merge_env(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    """The hook's environment, except that shell-managed names keep their old state."""
    merged = {k: v for k, v in after.items() if k not in SHELL_MANAGED}
    for name in SHELL_MANAGED:
        if name in before:
            merged[name] = before[name]
    return merged


def run_hooks(hooks_dir: str, env: dict[str, str]) -> dict[str, str]:
    """Run the hook directory before the app starts; return the app's environment.

    Names are logged (with -v), values never.  Raises :class:`HookError` on the
    first failing hook: the app must not start half-prepared.
    """
    env = dict(env)
    for path in hook_files(hooks_dir):
        runnable = os.access(path, os.X_OK)
        if path.endswith(SOURCE_SUFFIX) and runnable:
            log.info(f"hook: sourcing {path}")
            env = source_script(path, env)
        elif path.endswith(RUN_SUFFIX) and runnable:
            log.info(f"hook: running {path}")
            run_script(path, env)
        elif path.endswith((RUN_SUFFIX, SOURCE_SUFFIX)):
            log.info(f"hook: skipping {path}: not executable")
        else:
            log.info(f"hook: skipping {path}: not a *.sh or *.envsh file")
    return env
