"""Finish hooks (``--finish-dir``): s6-overlay's ``cont-finish.d`` and runit's ``finish``.

After the app and everything below it have exited, each executable ``*.sh``
of the directory runs, in the same version order as the start hooks
(:func:`entrypoint.supervise.hooks.hook_files`), with ``ENTRYPOINT_EXIT_CODE``
set to the code ``run`` is about to exit with.  Each is bounded by
``--finish-timeout``: then it and its descendants get SIGKILL.  A failure is
logged and changes nothing: the exit code stays the app's.

They run in a fork of PID 1, like the start hooks, so that :mod:`signal`,
the version sorter and whatever else they need never load into PID 1.  That
runner enforces the timeouts itself, and PID 1 does not forward stop signals
to it: a ``docker stop`` during the finish hooks cannot make them run longer,
nor cut them off half-way; the container is held at most for their timeouts.
"""

from __future__ import annotations

import os

from entrypoint import log
from entrypoint.errors import ConfigError
from entrypoint.supervise.parts import spawn, state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from entrypoint.supervise.loop import Supervisor

EXIT_CODE_VAR = "ENTRYPOINT_EXIT_CODE"
SUFFIX = ".sh"


def check_dir(finish_dir: str) -> None:
    """A finish dir that exists but is not a directory is a configuration error (exit 78)."""
    if os.path.exists(finish_dir) and not os.path.isdir(finish_dir):
        raise ConfigError(f"--finish-dir {finish_dir}: not a directory")


def count_hooks(finish_dir: str) -> int:
    """How many ``*.sh`` sit at the top of the directory: for the kill-window arithmetic only
    (cheap, and without importing the version sorter into PID 1)."""
    try:
        return sum(1 for entry in os.scandir(finish_dir) if entry.name.endswith(SUFFIX))
    except OSError:
        return 0


def run_finish_hooks(sup: Supervisor, code: int, env: dict[str, str]) -> None:
    """Run the finish hooks (if the directory exists); ``code`` is what ``run`` exits with."""
    finish_dir = sup.opts.finish_dir
    if not os.path.isdir(finish_dir):
        return
    log.info(f"running finish hooks in {finish_dir} ({EXIT_CODE_VAR}={code})")
    sup.state.update(state.FINISHING, pid=None)
    hook_env = {**env, EXIT_CODE_VAR: str(code)}
    timeout = sup.opts.finish_timeout
    pid, _ = spawn.fork_step(env_out=False)
    if pid == 0:  # pragma: no cover - the runner, a fork of PID 1; ends in os._exit
        _runner(finish_dir, hook_env, timeout)
    sup.step(pid, stoppable=False)
    # Whatever a hook left running in the background: the container is ending, and
    # nothing may hold it past the hooks' own timeouts (no grace period here).
    sup.kill_leftovers()


def _runner(finish_dir: str, env: dict[str, str], timeout: float) -> None:
    """Child side: every hook in turn, each bounded; always exits 0 (failures are logged)."""
    try:
        from entrypoint.supervise.steps.hooks import hook_files

        for path in hook_files(finish_dir):
            if not path.endswith(SUFFIX):
                continue
            if not os.access(path, os.X_OK):
                log.info(f"finish hook: skipping {path}: not executable")
                continue
            run_bounded(path, env, timeout)
    except Exception as exc:  # a bug or an unreadable directory: logged, the exit code stays
        log.error(f"finish hooks: {exc}")
    finally:
        os._exit(0)


def run_bounded(path: str, env: dict[str, str], timeout: float) -> int | None:
    """Run one hook; its exit code (negative: signal), or None when it was killed at ``timeout``."""
    from entrypoint.errors import HookError
    from entrypoint.supervise.parts import tree
    from entrypoint.supervise.steps import hooks

    log.info(f"finish hook: running {path}")
    try:
        pid = hooks._spawn([path], env)
    except HookError as exc:
        log.error(f"finish {exc}")
        return 127
    if not _exited_within(pid, timeout):
        tree.signal_all([pid, *tree.descendants(pid)], 9)
        os.waitpid(pid, 0)
        log.error(f"finish hook {path} did not finish within {timeout:g} s: killed")
        return None
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        shown = 128 - code if code < 0 else code
        log.error(f"finish hook {path} failed with exit code {shown}; the exit code stays")
    return code


def _exited_within(pid: int, timeout: float) -> bool:
    """Wait for ``pid`` to exit (without reaping it) for at most ``timeout`` seconds."""
    import select

    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # pre-5.3 kernel: unbounded
        return True
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(0, int(timeout * 1000))))
    finally:
        os.close(pidfd)
