"""The supervision loop: one thread, signals taken synchronously, no timers while idle.

Every catchable signal is blocked and collected with ``sigwaitinfo`` (or
``sigtimedwait`` only while a deadline is pending: the stop delay, the grace
period, a restart backoff, a debounced re-render).  Nothing runs in
asynchronous handlers, so a storm of signals is just a queue we work through,
and an idle container costs no wake-ups at all.

One supervised child moves through named states (:class:`State`); each
state says which deadline is pending and what a signal, a child's exit or a
timeout does next.  See docs/runtime.md for the diagram.
"""

from __future__ import annotations

import os
import time

from entrypoint import log
from entrypoint.options import RESTART_RELOAD, RunOptions
from entrypoint.supervise.parts import signals, state, tree
from entrypoint.supervise.parts.spawn import ExecFailed, spawn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    from entrypoint.supervise.parts.user import Identity

    class Reader(Protocol):
        """Something inside PID 1 woken by a real-time signal (inotify readiness)."""

        signum: int

        def drain(self) -> None: ...

    class Watcher(Reader, Protocol):
        """What the loop needs from ``entrypoint.supervise.watch.Watcher``."""

        def deadline(self) -> float | None: ...
        def rerender(self) -> bool: ...

#: While SIGKILLed processes are still exiting, look again this often: a
#: process forked between our /proc scan and the kill would otherwise survive.
KILL_RECHECK = 0.1


def exit_code(status: int) -> int:
    """The child's code, or 128+N when it died of signal N (as a shell reports it)."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code & 0xFF


class State:
    """Where one supervised child is.  Plain strings: :mod:`enum` would cost PID 1 memory.

    RUNNING -> (stop signal, --stop-delay > 0) DRAINING -> (delay over or a second stop) FORWARDED
    RUNNING -> (stop signal, or a --watch restart) FORWARDED
    any alive state -> (child exits) SWEEPING, or DONE when nothing is left / no cleanup is wanted
    FORWARDED, SWEEPING -> (grace period over) KILLING -> (tree empty) DONE
    """

    RUNNING = "running"      # alive; signals are forwarded; nothing pending
    DRAINING = "draining"    # first stop signal held back for --stop-delay: the app keeps serving
    FORWARDED = "forwarded"  # the stop (or restart) signal was delivered; grace period running
    SWEEPING = "sweeping"    # the child is gone; its leftovers got SIGTERM; grace period running
    KILLING = "killing"      # grace period over: SIGKILL to the tree, again every KILL_RECHECK
    DONE = "done"            # the child and (if wanted) everything below it are gone


class _Child:
    """One supervised process and its state; a plain class (dataclasses cost PID 1 ~3 MiB)."""

    __slots__ = ("cleanup", "forward", "held", "kill_at", "pid", "state", "status", "stoppable",
                 "until")

    def __init__(self, pid: int, forward: bool, cleanup: bool, stoppable: bool) -> None:
        self.pid = pid
        self.forward = forward  # every signal goes to it (the app), or only stop signals (a step)
        self.cleanup = cleanup  # its leftovers are stopped after it exits, even when not stopping
        self.stoppable = stoppable  # stop signals reach it (False: finish hooks, bounded by themselves)
        self.state = State.RUNNING
        self.status: int | None = None  # wait status once reaped
        self.until = 0.0  # DRAINING: when the held stop signal is forwarded
        self.held = 0  # DRAINING: that signal (already rewritten)
        self.kill_at: float | None = None  # FORWARDED/SWEEPING: end of the grace period

    @property
    def alive(self) -> bool:
        return self.status is None


class Supervisor:
    """Runs children and the process tree below them; see docs/runtime.md."""

    def __init__(self, opts: RunOptions) -> None:
        self.opts = opts
        self.sigset = signals.all_signals()
        self.stopping = False  # the container is shutting down: no restarts, no new start
        self.stop_signal = 0
        self.tree_ok = tree.proc_matches_namespace()
        self.me = os.getpid()
        self.watcher: Watcher | None = None
        self.readers: list[Reader] = []  # --log-file follower (the watcher is added when set)
        self.state = state.StateFile(opts.state_file or None, opts.command)
        self.restarts = 0  # every re-spawn of the app, for the state file
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

    def kill_leftovers(self) -> None:
        """SIGKILL whatever is left below us and reap it (after the finish hooks: no grace)."""
        while True:
            left = self._leftovers()
            if not left:
                break
            tree.signal_all(left, signals.SIGKILL)
            self._wait(time.monotonic() + KILL_RECHECK)  # SIGCHLD, usually at once
            self.reap()
        self.reap()

    def _deliver(self, pid: int, signum: int, *, group: bool = True) -> None:
        try:
            if group and self.opts.signal_group:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)
        except OSError as exc:
            log.debug(f"cannot send {signals.name(signum)} to {pid}: {exc.strerror}")

    def _begin_stop(self, signum: int) -> None:
        """The first stop signal: the container is shutting down from now on."""
        self.stopping = True
        self.stop_signal = signum
        delay = f"stop delay {self.opts.stop_delay:g} s, then " if self.opts.stop_delay else ""
        log.info(f"got {signals.name(signum)}: stopping ({delay}grace period {self.opts.grace_period:g} s)")
        if self.state.phase != state.FINISHING:  # the finish hooks go on, bounded by their timeouts
            self.state.update(state.STOPPING)

    def _note_signal(self, signum: int) -> bool:
        """A signal with no child to forward it to; True when it is (or starts) a stop."""
        target = self.opts.rewrites.get(signum, signum)
        if target == 0 or signum not in signals.STOP_SIGNALS:
            return False
        if not self.stopping:
            self._begin_stop(signum)
        return True

    def _io_event(self, signum: int) -> bool:
        """Drain the reader whose readiness signal ``signum`` is, or all of them on SIGIO:
        the kernel falls back to SIGIO when the real-time signal queue overflows, and
        that one must wake them rather than reach the app."""
        hit = False
        for reader in self.readers:
            if signum in (reader.signum, signals.SIGIO):
                reader.drain()
                hit = True
        return hit

    # -- one child: the state machine ------------------------------------------

    def supervise(self, pid: int, *, forward: bool = True, cleanup: bool = True,
                  stoppable: bool = True) -> int:
        """Wait for ``pid`` to exit, then for the tree below us; return its exit code.

        ``forward=False`` is for start-up steps: only stop signals reach them
        (``stoppable=False``: not even those).  After the child exits,
        leftovers get SIGTERM (``cleanup``, or always when stopping) and, at
        the end of the grace period, SIGKILL with everything else; the wait
        ends as soon as the tree is empty.
        """
        child = _Child(pid, forward, cleanup, stoppable)
        self._watched.add(pid)
        while child.state != State.DONE:
            signum = self._wait(self._deadline(child))
            if signum is None:
                self._on_timeout(child)
            elif signum == signals.SIGCHLD:
                self._on_sigchld(child)
            elif not self._io_event(signum):
                self._on_signal(child, signum)
        self.reap()
        assert child.status is not None
        return exit_code(child.status)

    def _deadline(self, child: _Child) -> float | None:
        """The one deadline the child's state has pending (plus a due re-render while RUNNING)."""
        if child.state == State.DRAINING:
            return child.until
        if child.state in (State.FORWARDED, State.SWEEPING):
            return child.kill_at
        if child.state == State.KILLING:
            return time.monotonic() + KILL_RECHECK
        if child.state == State.RUNNING and child.forward and self.watcher is not None:
            return self.watcher.deadline()
        return None

    def _on_signal(self, child: _Child, signum: int) -> None:
        """Forward (rewritten) to the live child; a stop signal also moves the state on."""
        target = self.opts.rewrites.get(signum, signum)
        if target == 0:
            log.debug(f"dropping {signals.name(signum)} (--rewrite-signal)")
            return
        if signum not in signals.STOP_SIGNALS:
            if child.alive and child.forward:
                self._forward(child, target)
            return
        first = not self.stopping
        if first:
            self._begin_stop(signum)
        if not child.alive or not child.stoppable:
            return
        if child.state == State.RUNNING and first and child.forward and self.opts.stop_delay > 0:
            child.state, child.held = State.DRAINING, target
            child.until = time.monotonic() + self.opts.stop_delay
            log.info(f"keeping the app running for {self.opts.stop_delay:g} s (--stop-delay)")
            return
        self._forward_stop(child, target)

    def _forward(self, child: _Child, target: int) -> None:
        log.debug(f"forwarding {signals.name(target)} to pid {child.pid}")
        # A start-up step is not a group leader: signal the process itself.
        self._deliver(child.pid, target, group=child.forward)

    def _forward_stop(self, child: _Child, target: int) -> None:
        """Deliver a stop signal; the grace period starts now (once)."""
        self._forward(child, target)
        if child.state in (State.RUNNING, State.DRAINING):
            child.state = State.FORWARDED
            child.kill_at = time.monotonic() + self.opts.grace_period

    def _on_timeout(self, child: _Child) -> None:
        now = time.monotonic()
        if child.state == State.DRAINING and now >= child.until:
            log.info("stop delay over: forwarding the stop signal")
            self._forward_stop(child, child.held)
        elif child.state in (State.FORWARDED, State.SWEEPING) and child.kill_at is not None \
                and now >= child.kill_at:
            child.state = State.KILLING
            log.warn(f"grace period of {self.opts.grace_period:g} s over: killing the process tree")
            self._kill_tree(child.pid if child.alive else None)
            if not child.alive:
                self._sweep(child)
        elif child.state == State.KILLING:
            if child.alive:
                self._kill_tree(child.pid)
            else:
                self._sweep(child)
        elif child.state == State.RUNNING and child.forward and self._watch_due(child.pid):
            child.state = State.FORWARDED
            child.kill_at = now + self.opts.grace_period

    def _on_sigchld(self, child: _Child) -> None:
        self.reap()
        if child.alive and child.pid in self._statuses:
            child.status = self._statuses.pop(child.pid)
            self._watched.discard(child.pid)
            if not (child.cleanup or self.stopping):
                child.state = State.DONE
                return
        if not child.alive:
            self._sweep(child)

    def _sweep(self, child: _Child) -> None:
        """The child is gone: stop what is left of the tree, or finish when nothing is."""
        left = self._leftovers()
        if not left:
            child.state = State.DONE
        elif child.state == State.KILLING:
            tree.signal_all(left, signals.SIGKILL)
        elif child.state != State.SWEEPING:
            log.info(f"terminating {len(left)} leftover process(es)")
            tree.signal_all(left, signals.SIGTERM)
            child.state = State.SWEEPING
            if child.kill_at is None:
                child.kill_at = time.monotonic() + self.opts.grace_period

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
            elif self._io_event(signum):
                pass
            elif self._note_signal(signum):
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
            elif not self._io_event(signum):
                self._note_signal(signum)
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
                self.state.update(state.STOPPING, pid=None, last_exit_code=exc.exit_code)
                return exc.exit_code
            if on_start is not None:
                on_start()
                on_start = None
            log.info(f"started {argv[0]!r} as pid {pid}")
            self.state.update(state.RUNNING, pid=pid)
            raw = self.supervise(pid)
            code = 0 if raw in opts.remap_exit else raw
            log.info(f"{argv[0]!r} exited with {raw}" + (" (remapped to 0)" if code != raw else ""))
            self.state.update(pid=None, last_exit_code=code)
            if self._reload_restart and not self.stopping:
                self._reload_restart = False
                self._restarting()
                continue
            if self.stopping or not self._wants_restart(code):
                break
            if time.monotonic() - started >= opts.restart_reset:
                restarts, delay = 0, opts.restart_delay
            if opts.restart_max and restarts >= opts.restart_max:
                log.error(f"{argv[0]!r} exited with {raw}; giving up after {restarts} restart(s)")
                break
            restarts += 1
            log.warn(f"{argv[0]!r} exited with {raw}; restart {restarts} in {delay:g} s")
            self._restarting()
            if not self.pause(delay):
                break
            delay = min(delay * 2, opts.restart_delay_max)
        self.state.update(state.STOPPING)
        return code

    def _restarting(self) -> None:
        self.restarts += 1
        self.state.update(state.RESTARTING, restarts=self.restarts)

    def _wants_restart(self, code: int) -> bool:
        policy = self.opts.restart
        return policy == "always" or (policy == "on-failure" and code != 0)
