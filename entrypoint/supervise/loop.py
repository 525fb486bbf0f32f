"""The supervision loop: one thread, signals taken synchronously, no timers while idle.

Every catchable signal is blocked and collected with ``sigwaitinfo`` (or
``sigtimedwait`` only while a deadline is pending: the grace period, a
restart backoff, a debounced re-render).  Nothing runs in asynchronous
handlers, so a storm of signals is just a queue we work through, and an idle
container costs no wake-ups at all.
"""

from __future__ import annotations

import os
import time

from entrypoint import log
from entrypoint.supervise import signals, tree
from entrypoint.supervise.options import RESTART_RELOAD, RunOptions
from entrypoint.supervise.spawn import ExecFailed, spawn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    from entrypoint.supervise.user import Identity

    class Watcher(Protocol):
        """What the loop needs from ``entrypoint.supervise.watch.Watcher``."""

        signum: int

        def drain(self) -> None: ...
        def deadline(self) -> float | None: ...
        def rerender(self) -> bool: ...

#: While SIGKILLed processes are still exiting, look again this often: a
#: process forked between our /proc scan and the kill would otherwise survive.
KILL_RECHECK = 0.1


def exit_code(status: int) -> int:
    """The child's code, or 128+N when it died of signal N (as a shell reports it)."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code & 0xFF


class Supervisor:
    """Runs children and the process tree below them; see docs/runtime.md."""

    def __init__(self, opts: RunOptions) -> None:
        self.opts = opts
        self.sigset = signals.all_signals()
        self.stopping = False
        self.stop_signal = 0
        self.tree_ok = tree.proc_matches_namespace()
        self.me = os.getpid()
        self.watcher: Watcher | None = None
        #: --user: who the app (and every restart) runs as; None = as we are
        self.identity: Identity | None = None
        #: the app could not be started (exec or --user failed): a failed start for --termination-log
        self.start_failed = False
        self._reload_restart = False
        self._statuses: dict[int, int] = {}
        self._watched: set[int] = set()

    # -- signals and reaping -------------------------------------------------

    def _wait(self, deadline: float | None) -> int | None:
        """Next signal, or None when ``deadline`` (monotonic) passes first.

        A SIGPIPE we sent ourselves (a log line written to a stderr pipe nobody
        reads any more) is dropped, never forwarded: forwarding it would kill
        the app, and its own log line would raise the next one, for ever.
        """
        while True:
            if deadline is None:
                info = signals.sigwaitinfo(self.sigset)
            else:
                timed = signals.sigtimedwait(self.sigset, max(0.0, deadline - time.monotonic()))
                if timed is None:
                    return None
                info = timed
            if info.si_signo == signals.SIGPIPE and info.si_pid == self.me:
                continue
            return int(info.si_signo)

    def reap(self) -> None:
        """Collect every zombie we are the parent of, orphans included."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self._watched:
                self._statuses[pid] = status
            else:
                log.debug(f"reaped orphan pid {pid} ({exit_code(status)})")

    def _leftovers(self) -> list[int]:
        if not self.tree_ok or not tree.has_children():
            return []
        return tree.descendants(self.me)

    def _kill_tree(self, pid: int | None) -> None:
        """SIGKILL the child (if still ours) and every descendant, wherever its group or session."""
        if pid is not None:
            try:
                os.kill(pid, signals.SIGKILL)
            except OSError:
                pass
        tree.signal_all(self._leftovers(), signals.SIGKILL)

    def _deliver(self, pid: int, signum: int, *, group: bool = True) -> None:
        try:
            if group and self.opts.signal_group:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)
        except OSError as exc:
            log.debug(f"cannot send {signals.name(signum)} to {pid}: {exc.strerror}")

    def _on_signal(self, signum: int, pid: int | None, forward: bool) -> bool:
        """Forward (rewritten) to the live child; True when it starts a stop."""
        target = self.opts.rewrites.get(signum, signum)
        if target == 0:
            log.debug(f"dropping {signals.name(signum)} (--rewrite-signal)")
            return False
        is_stop = signum in signals.STOP_SIGNALS
        if is_stop and not self.stopping:
            self.stopping = True
            self.stop_signal = signum
            log.info(f"got {signals.name(signum)}: stopping (grace period {self.opts.grace_period:g} s)")
        if pid is not None and (forward or is_stop):
            log.debug(f"forwarding {signals.name(target)} to pid {pid}")
            # A start-up step is not a group leader: signal the process itself.
            self._deliver(pid, target, group=forward)
        return is_stop

    # -- one child -----------------------------------------------------------

    def supervise(self, pid: int, *, forward: bool = True, cleanup: bool = True) -> int:
        """Wait for ``pid`` to exit, then for the tree below us; return its exit code.

        ``forward=False`` is for start-up steps: only stop signals reach them.
        After the child exits, leftovers get SIGTERM (``cleanup``, or always
        when stopping) and, at the end of the grace period, SIGKILL with
        everything else; the wait ends as soon as the tree is empty.
        """
        self._watched.add(pid)
        status: int | None = None
        kill_at: float | None = None
        killed = False
        termed = False
        while True:
            if status is not None and (cleanup or self.stopping):
                left = self._leftovers()
                if not left:
                    break
                if killed:
                    tree.signal_all(left, signals.SIGKILL)
                elif not termed:
                    termed = True
                    log.info(f"terminating {len(left)} leftover process(es)")
                    tree.signal_all(left, signals.SIGTERM)
                    if kill_at is None:
                        kill_at = time.monotonic() + self.opts.grace_period
            elif status is not None:
                break
            signum = self._wait(self._deadline(kill_at, killed, forward))
            if signum is None:
                if kill_at is not None and not killed and time.monotonic() >= kill_at:
                    killed = True
                    log.warn(f"grace period of {self.opts.grace_period:g} s over: killing the process tree")
                    self._kill_tree(pid if status is None else None)
                if forward and status is None and self._watch_due(pid) and kill_at is None:
                    kill_at = time.monotonic() + self.opts.grace_period
                continue
            if signum == signals.SIGCHLD:
                self.reap()
                if pid in self._statuses:
                    status = self._statuses.pop(pid)
                    self._watched.discard(pid)
            elif self._watch_event(signum):
                pass
            elif self._on_signal(signum, pid if status is None else None, forward) and kill_at is None:
                kill_at = time.monotonic() + self.opts.grace_period
        self.reap()
        assert status is not None
        return exit_code(status)

    def _watch_event(self, signum: int) -> bool:
        """Drain the watcher if ``signum`` is its readiness signal, or SIGIO: the
        kernel falls back to SIGIO when the realtime signal queue overflows, and
        that one must wake the watcher too rather than reach the app."""
        watcher = self.watcher
        if watcher is None or signum not in (watcher.signum, signals.SIGIO):
            return False
        watcher.drain()
        return True

    def _deadline(self, kill_at: float | None, killed: bool, forward: bool) -> float | None:
        times = []
        if killed:
            times.append(time.monotonic() + KILL_RECHECK)
        elif kill_at is not None:
            times.append(kill_at)
        if forward and self.watcher is not None:
            due = self.watcher.deadline()
            if due is not None:
                times.append(due)
        return min(times) if times else None

    def _watch_due(self, pid: int) -> bool:
        """A debounced template change is due: re-render, then reload or restart the child.

        True when the child was asked to stop for a restart (the grace period applies).
        """
        watcher = self.watcher
        if watcher is None or self.stopping:
            return False
        due = watcher.deadline()
        if due is None or due > time.monotonic():
            return False
        if not watcher.rerender():
            return False
        reload = self.opts.reload_signal
        if reload == RESTART_RELOAD:
            log.info("templates changed: restarting the child")
            self._reload_restart = True
            self._deliver(pid, self.opts.rewrites.get(signals.SIGTERM, signals.SIGTERM) or signals.SIGTERM)
            return True
        log.info(f"templates changed: sending {signals.name(reload)}")
        self._deliver(pid, reload)
        return False

    # -- between runs ----------------------------------------------------------

    def pause(self, seconds: float) -> bool:
        """Restart backoff; False when a stop signal ends it (at once)."""
        until = time.monotonic() + seconds
        while True:
            signum = self._wait(until)
            if signum is None:
                return True
            if signum == signals.SIGCHLD:
                self.reap()
            elif self._watch_event(signum):
                pass
            elif self._on_signal(signum, None, False):
                return False

    def stop_requested(self) -> bool:
        """Drain pending signals before a start; True if one of them says stop."""
        while not self.stopping:
            info = signals.sigtimedwait(self.sigset, 0)
            if info is None:
                return False
            signum = int(info.si_signo)
            if signum == signals.SIGCHLD:
                self.reap()
            elif signum in signals.STOP_SIGNALS:
                self._on_signal(signum, None, False)
        return True

    # -- the app ---------------------------------------------------------------

    def run_app(self, argv: list[str], env: dict[str, str],
                on_start: Callable[[], None] | None = None) -> int:
        """Start, supervise and restart per ``--restart``; return the exit code.

        ``on_start`` is called once, when the app has been started the first time.
        """
        opts = self.opts
        restarts = 0
        delay = opts.restart_delay
        code = 128 + self.stop_signal if self.stopping else 0
        while not self.stop_requested():
            started = time.monotonic()
            try:
                pid = spawn(argv, env, self.identity)
            except ExecFailed as exc:
                log.error(str(exc))
                self.start_failed = True
                return exc.exit_code
            if on_start is not None:
                on_start()
                on_start = None
            log.info(f"started {argv[0]!r} as pid {pid}")
            raw = self.supervise(pid)
            code = 0 if raw in opts.remap_exit else raw
            log.info(f"{argv[0]!r} exited with {raw}" + (" (remapped to 0)" if code != raw else ""))
            if self._reload_restart and not self.stopping:
                self._reload_restart = False
                continue
            if self.stopping or not self._wants_restart(code):
                return code
            if time.monotonic() - started >= opts.restart_reset:
                restarts, delay = 0, opts.restart_delay
            if opts.restart_max and restarts >= opts.restart_max:
                log.error(f"{argv[0]!r} exited with {raw}; giving up after {restarts} restart(s)")
                return code
            restarts += 1
            log.warn(f"{argv[0]!r} exited with {raw}; restart {restarts} in {delay:g} s")
            if not self.pause(delay):
                return code
            delay = min(delay * 2, opts.restart_delay_max)
        return code

    def _wants_restart(self, code: int) -> bool:
        policy = self.opts.restart
        return policy == "always" or (policy == "on-failure" and code != 0)
