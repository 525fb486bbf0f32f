"""The supervision loop: one thread, signals taken synchronously, no timers while idle.

Every catchable signal is blocked and collected with ``sigwaitinfo`` (or
``sigtimedwait`` only while a deadline is pending: the stop delay, the grace
period, a restart backoff, a readiness timeout, a finish script's timeout, a
debounced re-render).  Nothing runs in asynchronous handlers, so a storm of
signals is just a queue we work through, and an idle container costs no
wake-ups at all.

What is supervised is a list of units (:mod:`entrypoint.supervise.unit`): the
app, the services, or one start-up step.  Each unit has its own state
(starting, ready, backoff, stopping, down); the container as a whole moves
through the named stages of :class:`State`, which say which shared deadline
is pending and what a stop signal does next.  After every event
:meth:`Supervisor._advance` derives what is due from the facts (who is
alive, who is ready, what time it is), so each transition is written once.
See docs/runtime.md for the diagram.
"""

from __future__ import annotations

import os
import time

from entrypoint import log
from entrypoint.options import RESTART_RELOAD, RunOptions
from entrypoint.supervise import unit as units
from entrypoint.supervise.parts import signals, state, tree
from entrypoint.supervise.parts.spawn import ExecFailed, spawn
from entrypoint.supervise.unit import APP, BACKOFF, DOWN, READY, SERVICE, STARTING, STEP, STOPPING, Unit

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    from entrypoint.supervise.parts.user import Identity
    from entrypoint.supervise.services.readiness import Notifications

    class Reader(Protocol):
        """Something inside PID 1 woken by a real-time signal (inotify readiness, a pipe)."""

        signum: int

        def drain(self) -> None: ...

    class Watcher(Reader, Protocol):
        """What the loop needs from ``entrypoint.supervise.parts.watch.Watcher``."""

        def deadline(self) -> float | None: ...
        def rerender(self) -> bool: ...

    class Output(Reader, Protocol):
        """What the loop needs from ``entrypoint.supervise.services.output.ServiceOutput``."""

        def pipes(self, name: str) -> tuple[int, int]: ...
        def close_all(self) -> None: ...

#: While SIGKILLed processes are still exiting, look again this often: a
#: process forked between our /proc scan and the kill would otherwise survive.
KILL_RECHECK = 0.1

#: A start that cannot complete (a service that will never be ready): as a --wait that timed out.
EX_START_FAILED = 69


def exit_code(status: int) -> int:
    """The child's code, or 128+N when it died of signal N (as a shell reports it)."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code & 0xFF


def finish_arguments(status: int) -> tuple[int, int]:
    """s6's two ``finish`` arguments: the exit code (or 256), the signal number (or 0)."""
    if os.WIFSIGNALED(status):
        return 256, os.WTERMSIG(status)
    return os.WEXITSTATUS(status), 0


class State:
    """Where the container is.  Plain strings: :mod:`enum` would cost PID 1 memory.

    RUNNING -> (stop signal, --stop-delay > 0) DRAINING -> (delay over or a second stop) FORWARDED
    RUNNING -> (stop signal, the app's or an essential service's end for good) FORWARDED
    FORWARDED -> (every unit gone) SWEEPING, or DONE when the tree is empty
    RUNNING -> (every unit gone, one to restart, leftovers) SWEEPING -> (tree empty) RUNNING
    FORWARDED, SWEEPING -> (grace period over) KILLING -> (tree empty) DONE
    """

    RUNNING = "running"      # units start, get ready, restart; signals are forwarded
    DRAINING = "draining"    # first stop signal held back for --stop-delay: the app keeps serving
    FORWARDED = "forwarded"  # stopping: each unit gets its stop signal once its dependants are gone
    SWEEPING = "sweeping"    # every unit is gone; their leftovers got SIGTERM; grace period running
    KILLING = "killing"      # grace period over: SIGKILL to the tree, again every KILL_RECHECK
    DONE = "done"            # every unit and (if wanted) everything below us are gone


class Supervisor:
    """Runs units and the process tree below them; see docs/runtime.md."""

    def __init__(self, opts: RunOptions) -> None:
        self.opts = opts
        self.sigset = signals.all_signals()
        self.stopping = False  # the container is shutting down: no restarts, no new start
        self.stop_signal = 0
        self.tree_ok = tree.proc_matches_namespace()
        self.me = os.getpid()
        self.watcher: Watcher | None = None
        self.readers: list[Reader] = []  # --log-file follower, services' output (and the watcher)
        self.state = state.StateFile(opts.state_file or None, opts.command)
        self.restarts = 0  # every re-spawn of the app, for the state file
        #: --user: who the app (and every restart) runs as; None = as we are
        self.identity: Identity | None = None
        #: the app could not be started (exec or --user failed): a failed start for --termination-log
        self.start_failed = False
        #: services' stdout/stderr framing and notification pipes (None: no services)
        self.output: Output | None = None
        self.notifications: Notifications | None = None
        self.units: list[Unit] = []
        self.stage = State.RUNNING
        self.until = 0.0  # DRAINING: when the held stop signal is forwarded
        self.held = 0  # DRAINING: that signal (already rewritten)
        self.kill_at: float | None = None  # the one grace period's end
        #: the unit whose end for good stopped the container (the app, an essential service)
        self.cause: Unit | None = None
        self.cannot_start: Unit | None = None  # a service that will never be ready ended the start
        self.on_started: Callable[[], None] | None = None  # once, when the start is complete
        self._statuses: dict[int, int] = {}
        self._watched: set[int] = set()
        self._notify_fds: dict[str, int] = {}  # service -> read end of its notification pipe

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

    def _kill_tree(self) -> None:
        """SIGKILL every unit's processes and every descendant, wherever its group or session."""
        for unit in self.units:
            for pid in (unit.pid, unit.ready_pid, unit.finish_pid):
                if pid is not None:
                    self._deliver(pid, signals.SIGKILL, group=False)
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

    # -- the state machine ---------------------------------------------------------

    def supervise(self, supervised: list[Unit]) -> None:
        """Run ``supervised`` until every unit is down for good and (after a stop) the tree is empty.

        Units start as their dependencies become ready, restart by their own
        policy, and stop in reverse dependency order within one grace period.
        """
        self.units = supervised
        units.link(supervised)
        self.stage, self.kill_at = State.RUNNING, None
        if self.stopping:  # a stop signal came before anything started
            self._cancel_pending()
            self.stage = State.FORWARDED
        self._advance()
        while self.stage != State.DONE:
            signum = self._wait(self._deadline())
            if signum == signals.SIGCHLD:
                self._on_sigchld()
            elif signum is not None and not self._io_event(signum):
                self._on_signal(signum)
            self._advance()
        self.reap()

    def step(self, pid: int, *, stoppable: bool = True) -> int:
        """Supervise one start-up step (a fork of PID 1): stop signals only, no restart; its code.

        ``stoppable=False`` (the finish hooks): not even stop signals reach it.
        After it exits nothing is swept unless the container is stopping.
        """
        one = Unit(STEP, "step", ["step"], {}, stoppable=stoppable)
        one.pid, one.state, one.started = pid, READY, True
        self._watched.add(pid)
        self.supervise([one])
        assert one.last_exit_code is not None
        return one.last_exit_code

    def _deadline(self) -> float | None:
        """The earliest deadline pending: the stage's, then each unit's; None = sleep until a signal."""
        stage = self.stage
        if stage == State.DRAINING:
            return self.until
        if stage == State.KILLING:
            return time.monotonic() + KILL_RECHECK
        due: list[float] = []
        if stage in (State.FORWARDED, State.SWEEPING) and self.kill_at is not None:
            due.append(self.kill_at)
        starting = stage == State.RUNNING and not self.stopping
        for unit in self.units:
            if unit.finish_pid is not None:
                due.append(unit.finish_kill_at)
            elif starting and unit.state == BACKOFF:
                due.append(unit.retry_at)
            if unit.kill_at is not None and unit.pid is not None:
                due.append(unit.kill_at)
            if starting and unit.ready_at is not None:
                due.append(unit.ready_at)
        if stage == State.RUNNING and self.watcher is not None and self._targets():
            watch = self.watcher.deadline()
            if watch is not None:
                due.append(watch)
        return min(due) if due else None

    def _advance(self) -> None:
        """Do what is due now; repeated until nothing changes (one start can enable the next)."""
        for _ in range(len(self.units) + 2):
            if not self._advance_once():
                break
        self._publish()

    def _advance_once(self) -> bool:
        now = time.monotonic()
        changed = self._unit_deadlines(now)
        stage = self.stage
        if stage == State.RUNNING:
            if not any(u.alive for u in self.units):
                if all(u.kind == STEP for u in self.units) and not self.stopping:
                    self.stage = State.DONE  # a step's leftovers are the next step's business
                    return True
                if all(u.state == DOWN for u in self.units) and any(u.kind == APP for u in self.units):
                    self._begin_stop(0, None)  # nothing left to supervise
                    return True
                # Services only, every one down for good: run on, idle, until a stop signal
                # (cli.md), as s6-svscan does; `status` shows them down.
                if self._needs_sweep():
                    self._sweep(now)  # before a restart: its predecessor's leftovers go first
                    return True
            changed = self._readiness() or changed
            if self._watch_due(now):
                changed = True
            changed = self._start_due(now) or changed
            changed = self._check_start(now) or changed
        elif stage == State.DRAINING:
            if not any(u.alive for u in self.units):
                self._forward_stop(self.held)  # everything ended meanwhile: nothing to hold
                return True
            if now >= self.until:
                log.info("stop delay over: forwarding the stop signal")
                self._forward_stop(self.held)
                return True
        elif stage == State.FORWARDED:
            changed = self._stop_next() or changed
            if not any(u.alive for u in self.units):
                self._sweep(now)
                return True
        if self.stage in (State.FORWARDED, State.SWEEPING) and self.kill_at is not None \
                and now >= self.kill_at:
            self.stage = State.KILLING
            log.warn(f"grace period of {self.opts.grace_period:g} s over: killing the process tree")
            self._kill_tree()
            return True
        if self.stage == State.KILLING:
            if any(u.alive for u in self.units):
                self._kill_tree()
            else:
                left = self._leftovers()
                if not left:
                    return self._after_sweep()
                tree.signal_all(left, signals.SIGKILL)
        elif self.stage == State.SWEEPING and not self._leftovers():
            return self._after_sweep()
        return changed

    # -- starting and readiness --------------------------------------------------

    def _start_due(self, now: float) -> bool:
        """Start every unit whose dependencies are ready (and whose backoff is over)."""
        if self.stopping:
            return False
        by_name = {u.name: u for u in self.units}
        changed = False
        for unit in self.units:
            if unit.state == BACKOFF and now >= unit.retry_at and unit.finish_pid is None:
                unit.state = STARTING
                changed = True
            if unit.state != STARTING or unit.pid is not None or unit.ready_pid is not None \
                    or unit.finish_pid is not None:
                continue
            if all(by_name[d].settled for d in unit.dependencies if d in by_name):
                self._start(unit, now)
                changed = True
                if self.stopping:
                    break
        return changed

    def _start(self, unit: Unit, now: float) -> None:
        try:
            pid = self._spawn(unit)
        except ExecFailed as exc:
            log.error(f"{unit.label}: {exc}" if unit.kind == SERVICE else str(exc))
            if unit.kind == APP:
                self.start_failed = True
                unit.state, unit.last_exit_code, self.cause = DOWN, exc.exit_code, unit
                self.state.update(state.STOPPING, pid=None, last_exit_code=exc.exit_code)
                self._begin_stop(0, unit)
                return
            unit.started_at = now
            self._ended(unit, exc.exit_code << 8, now)
            return
        first = not unit.started
        unit.pid, unit.started, unit.started_at, unit.status = pid, True, now, None
        unit.signalled, unit.kill_at, unit.failed_start = False, None, False
        self._watched.add(pid)
        log.info(f"started {unit.label} as pid {pid}" if unit.kind == APP
                 else f"{unit.label}: started as pid {pid}")
        if unit.kind == APP:
            if first and self.on_started is not None:
                self.on_started()
                self.on_started = None
            self.state.update(state.RUNNING, pid=pid)
        if unit.kind == SERVICE and (unit.notification_fd is not None or unit.ready_url is not None):
            unit.ready_at = now + unit.timeout_up
            if unit.ready_url is not None:
                from entrypoint.supervise.services.readiness import fork_ready_wait

                unit.ready_pid = fork_ready_wait(unit.name, unit.ready_url, unit.timeout_up)
                self._watched.add(unit.ready_pid)
        else:
            self._ready(unit)

    def _spawn(self, unit: Unit) -> int:
        if unit.kind != SERVICE:
            return spawn(unit.argv, unit.env, unit.identity)
        from entrypoint.supervise.parts.spawn import ChildSetup

        fds: dict[int, int] = {}
        close: list[int] = []
        if self.output is not None:
            out, err = self.output.pipes(unit.name)
            fds[1], fds[2] = out, err
            close += [out, err]
        if unit.notification_fd is not None and self.notifications is not None:
            read_end, write_end = self.notifications.pipe(unit.name)
            self._notify_fds[unit.name] = read_end
            fds[unit.notification_fd] = write_end
            close.append(write_end)
        try:
            return spawn(unit.argv, unit.env, unit.identity, ChildSetup(unit.cwd, fds))
        finally:
            for fd in close:
                os.close(fd)

    def _ready(self, unit: Unit) -> None:
        if unit.state != STARTING:
            return
        unit.state, unit.ready_at, unit.was_ready = READY, None, True
        if unit.kind == SERVICE:
            log.info(f"{unit.label}: ready")
        if self.on_started is not None and self._all_started():
            self.on_started()
            self.on_started = None

    def _all_started(self) -> bool:
        """The start is complete: every service ready, and the app (if any) started."""
        return all(u.settled or (u.kind == APP and u.started) for u in self.units)

    def _readiness(self) -> bool:
        """Services that wrote their notification newline."""
        if self.notifications is None:
            return False
        names = self.notifications.take()
        for unit in self.units:
            if unit.name in names and unit.pid is not None:
                self._notify_fds.pop(unit.name, None)
                self._ready(unit)
        return bool(names)

    def _unit_deadlines(self, now: float) -> bool:
        """A unit's own deadlines: timeout-up, its own grace (a restart, a timeout-up stop), its finish."""
        changed = False
        for unit in self.units:
            if unit.finish_pid is not None and now >= unit.finish_kill_at:
                log.error(f"{unit.label}: finish did not end within {self.opts.finish_timeout:g} s: killed")
                tree.signal_all([unit.finish_pid, *self._descendants(unit.finish_pid)], signals.SIGKILL)
                unit.finish_kill_at = now + KILL_RECHECK
                changed = True
            if unit.pid is None:
                continue
            if unit.kill_at is not None and now >= unit.kill_at:
                log.warn(f"{unit.label} did not stop within {self.opts.grace_period:g} s: killing it")
                self._deliver(unit.pid, signals.SIGKILL, group=False)
                unit.kill_at = now + KILL_RECHECK
                changed = True
            if unit.ready_at is not None and now >= unit.ready_at and unit.state == STARTING \
                    and not self.stopping:
                log.error(f"{unit.label}: not ready within {unit.timeout_up:g} s (timeout-up): stopping it")
                self._stop_unit(unit, now)
                unit.failed_start = True
                changed = True
        return changed

    def _descendants(self, pid: int) -> list[int]:
        return tree.descendants(pid) if self.tree_ok else []

    def _stop_unit(self, unit: Unit, now: float) -> None:
        """Stop one unit on its own (the container goes on): its stop signal, then its own grace."""
        assert unit.pid is not None
        self._kill_ready_wait(unit)
        unit.state, unit.ready_at = STOPPING, None
        self._deliver(unit.pid, unit.stop_signal, group=unit.kind == APP)
        unit.kill_at = now + self.opts.grace_period

    def _kill_ready_wait(self, unit: Unit) -> None:
        if unit.ready_pid is not None:
            self._deliver(unit.ready_pid, signals.SIGKILL, group=False)
        if self.notifications is not None:
            self.notifications.close(self._notify_fds.pop(unit.name, None))

    def _check_start(self, now: float) -> bool:
        """A unit waits for a dependency that ended for good without ever being ready: it can
        never start, so the start cannot complete (exit 69).  (A unit that started once had every
        dependency ready then, and a unit that was ready once never blocks anyone again.)"""
        if self.stopping:
            return False
        by_name = {u.name: u for u in self.units}
        for unit in self.units:
            if unit.state != STARTING or unit.pid is not None:
                continue
            for name in unit.dependencies:
                dep = by_name.get(name)
                if dep is not None and dep.state == DOWN and not dep.was_ready:
                    log.error(f"{dep.label} is down for good and was never ready: "
                              f"{unit.label} cannot start; stopping (exit {EX_START_FAILED})")
                    self.cannot_start = dep
                    self._begin_stop(0, None)
                    return True
        return False

    # -- ends ------------------------------------------------------------------------

    def _on_sigchld(self) -> None:
        self.reap()
        now = time.monotonic()
        for unit in self.units:
            if unit.pid is not None and unit.pid in self._statuses:
                pid = unit.pid
                status = self._statuses.pop(pid)
                self._watched.discard(pid)
                unit.pid = None
                self._ended(unit, status, now)
            if unit.ready_pid is not None and unit.ready_pid in self._statuses:
                ok = self._statuses.pop(unit.ready_pid) == 0
                self._watched.discard(unit.ready_pid)
                unit.ready_pid = None
                if ok and unit.pid is not None:
                    self._ready(unit)
            if unit.finish_pid is not None and unit.finish_pid in self._statuses:
                self._watched.discard(unit.finish_pid)
                code = exit_code(self._statuses.pop(unit.finish_pid))
                unit.finish_pid = None
                if code != 0:
                    log.warn(f"{unit.label}: finish exited with {code}")

    def _ended(self, unit: Unit, status: int, now: float) -> None:
        """One end of a unit: finish script, then its policy (restart, down, the container's stop)."""
        raw = exit_code(status)
        unit.status = status
        unit.ready_at = None
        self._kill_ready_wait(unit)
        if unit.kind == STEP:
            unit.last_exit_code, unit.state = raw, DOWN
            return
        code = 0 if unit.kind == APP and raw in self.opts.remap_exit else raw
        unit.last_exit_code = code
        note = " (remapped to 0)" if code != raw else ""
        if unit.kind == APP:
            log.info(f"{unit.label} exited with {raw}{note}")
            self.state.update(pid=None, last_exit_code=code)
        if unit.finish is not None:
            unit.finish_args = finish_arguments(status)
            if not self.stopping:
                self._run_finish(unit, now)
        if self.stopping:
            if unit.kind == SERVICE:
                log.info(f"{unit.label} exited with {raw}")
            unit.state = DOWN
            return
        if unit.reload_restart:
            unit.reload_restart = False
            unit.state, unit.retry_at = BACKOFF, now
            self._restarting(unit)
            return
        delay = unit.next_delay(now) if unit.wants_restart(code) else None
        if delay is not None:
            log.warn(f"{unit.label} exited with {raw}; restart {unit.in_a_row} in {delay:g} s")
            unit.state, unit.retry_at = BACKOFF, now + delay
            self._restarting(unit)
            return
        if unit.wants_restart(code):
            log.error(f"{unit.label} exited with {raw}; giving up after {unit.in_a_row} restart(s)")
        elif unit.kind == SERVICE:
            log.info(f"{unit.label} exited with {raw}; not restarted (restart {unit.restart})")
        unit.state = DOWN
        if unit.essential:
            self.cause = unit
            self._begin_stop(0, unit)

    def _restarting(self, unit: Unit) -> None:
        unit.restarts += 1
        if unit.kind == APP:
            self.restarts += 1
            self.state.update(state.RESTARTING, restarts=self.restarts)

    def _run_finish(self, unit: Unit, now: float) -> None:
        """The service's ``finish`` with s6's two arguments, bounded by --finish-timeout."""
        args = unit.finish_args
        assert unit.finish is not None and args is not None
        unit.finish_args = None
        finisher = Unit(SERVICE, unit.name, [unit.finish, str(args[0]), str(args[1])], unit.env,
                        cwd=unit.cwd, identity=unit.identity)
        try:
            pid = self._spawn(finisher)
        except ExecFailed as exc:
            log.error(f"{unit.label}: finish: {exc}")
            return
        log.debug(f"{unit.label}: finish {args[0]} {args[1]} as pid {pid}")
        unit.finish_pid, unit.finish_kill_at = pid, now + self.opts.finish_timeout
        self._watched.add(pid)

    def run_deferred_finishes(self) -> None:
        """After the stop and the sweep: every service's pending ``finish``, at once, each bounded."""
        now = time.monotonic()
        pending = [u for u in self.units if u.finish_args is not None]
        if not pending:
            return
        for unit in pending:
            self._run_finish(unit, now)
        while any(u.finish_pid is not None for u in self.units):
            due = min(u.finish_kill_at for u in self.units if u.finish_pid is not None)
            signum = self._wait(due)
            if signum == signals.SIGCHLD:
                self._on_sigchld()
            elif signum is not None:
                self._io_event(signum)
            self._unit_deadlines(time.monotonic())
        self.kill_leftovers()

    # -- stopping ----------------------------------------------------------------------

    def _begin_stop(self, signum: int, cause: Unit | None) -> None:
        """The container is shutting down from now on: a stop signal (``signum``) or a unit's end."""
        if self.stopping:
            return
        self.stopping = True
        if signum:
            self.stop_signal = signum
            delay = f"stop delay {self.opts.stop_delay:g} s, then " if self.opts.stop_delay else ""
            log.info(f"got {signals.name(signum)}: stopping ({delay}grace period "
                     f"{self.opts.grace_period:g} s)")
        elif cause is not None and cause.kind == SERVICE and any(u.alive for u in self.units):
            log.info(f"essential {cause.label} is down: stopping (grace period {self.opts.grace_period:g} s)")
        if self.state.phase != state.FINISHING:  # the finish hooks go on, bounded by their timeouts
            self.state.update(state.STOPPING)
        self._cancel_pending()
        target = self.opts.rewrites.get(signum, signum) if signum else 0
        running = [u for u in self.units if u.kind != STEP and u.pid is not None]
        if self.opts.stop_delay > 0 and running and (signum or cause is not None):
            self.stage, self.held = State.DRAINING, target
            self.until = time.monotonic() + self.opts.stop_delay
            if signum:
                log.info(f"keeping the app running for {self.opts.stop_delay:g} s (--stop-delay)")
            return
        if self.stage == State.RUNNING:
            self._forward_stop(target)

    def _cancel_pending(self) -> None:
        """No start and no restart once stopping: what is not running is down."""
        for unit in self.units:
            if unit.pid is None and unit.state in (STARTING, BACKOFF):
                unit.state = DOWN
            elif unit.state == STARTING:
                self._kill_ready_wait(unit)
                unit.ready_at = None

    def _forward_stop(self, target: int) -> None:
        """From now on each unit gets its stop signal once its dependants are gone."""
        self.stage = State.FORWARDED
        self.held = target
        self._stop_next()

    def _stop_signal_of(self, unit: Unit) -> int:
        if unit.kind == SERVICE:
            return unit.stop_signal
        if self.held:
            return self.held
        return self.opts.rewrites.get(signals.SIGTERM, signals.SIGTERM) or signals.SIGTERM

    def _stop_next(self) -> bool:
        """Signal each running unit whose dependants have all ended (the app first, then the
        services in reverse dependency order); the grace period starts with the first signal."""
        changed = False
        for unit in self.units:
            if unit.pid is None or unit.signalled or not unit.stoppable:
                continue
            if any(d.pid is not None for d in unit.dependants):
                continue
            unit.signalled = True
            if unit.state != DOWN:
                unit.state = STOPPING
            signum = self._stop_signal_of(unit)
            log.debug(f"forwarding {signals.name(signum)} to pid {unit.pid}" if unit.kind != SERVICE
                      else f"{unit.label}: sending {signals.name(signum)} to pid {unit.pid}")
            self._deliver(unit.pid, signum, group=unit.kind == APP)
            if self.kill_at is None:
                self.kill_at = time.monotonic() + self.opts.grace_period
            changed = True
        return changed

    def _needs_sweep(self) -> bool:
        """Nothing runs and a unit will start again: leftovers of its last run?  (Not at the first
        start: what a hook left running in the background is not an app's leftover.)"""
        return any(u.started and u.kind != STEP for u in self.units) and bool(self._leftovers())

    def _sweep(self, now: float) -> None:
        """Every unit is gone: stop what is left of the tree, or finish when nothing is."""
        if not self.stopping and all(u.kind == STEP for u in self.units):
            self.stage = State.DONE  # a step's leftovers are the next step's business
            return
        left = self._leftovers()
        if not left:
            self._after_sweep()
            return
        log.info(f"terminating {len(left)} leftover process(es)")
        tree.signal_all(left, signals.SIGTERM)
        self.stage = State.SWEEPING
        if self.kill_at is None:
            self.kill_at = now + self.opts.grace_period
        unit_grace = [u.kill_at for u in self.units if u.kill_at is not None]
        if unit_grace and not self.stopping:
            self.kill_at = min(self.kill_at, *unit_grace)

    def _after_sweep(self) -> bool:
        """The tree is empty: done when stopping (or nothing will start again), else run on."""
        if self.stopping or all(u.state == DOWN for u in self.units):
            self.stage = State.DONE
        else:
            self.stage, self.kill_at = State.RUNNING, None
            for unit in self.units:
                unit.kill_at = None
        return True

    # -- signals -----------------------------------------------------------------------

    def _targets(self) -> list[Unit]:
        """Who gets forwarded signals: the app; without one, every service."""
        apps = [u for u in self.units if u.kind == APP]
        chosen = apps or [u for u in self.units if u.kind == SERVICE]
        return [u for u in chosen if u.pid is not None and not u.reload_restart]

    def _on_signal(self, signum: int) -> None:
        """Forward (rewritten) to the live app; a stop signal also moves the stage on."""
        target = self.opts.rewrites.get(signum, signum)
        if target == 0:
            log.debug(f"dropping {signals.name(signum)} (--rewrite-signal)")
            return
        if signum not in signals.STOP_SIGNALS:
            for unit in self._targets():
                log.debug(f"forwarding {signals.name(target)} to pid {unit.pid}")
                assert unit.pid is not None
                self._deliver(unit.pid, target, group=unit.kind == APP)
            return
        if not self.stopping:
            self._begin_stop(signum, None)
            return
        if self.stage == State.DRAINING:
            self._forward_stop(target)
            return
        for unit in self.units:  # a repeated stop signal reaches the app (and a step) again
            if unit.signalled and unit.pid is not None and unit.kind != SERVICE:
                log.debug(f"forwarding {signals.name(target)} to pid {unit.pid}")
                self._deliver(unit.pid, target, group=unit.kind == APP)

    def _watch_due(self, now: float) -> bool:
        """A debounced template change is due: re-render, then reload or restart the app.

        True when something was done.
        """
        watcher = self.watcher
        if watcher is None or self.stopping:
            return False
        targets = self._targets()
        due = watcher.deadline()
        if not targets or due is None or due > now:
            return False
        if not watcher.rerender():
            return True
        reload = self.opts.reload_signal
        if reload == RESTART_RELOAD:
            log.info("templates changed: restarting the child")
            for unit in targets:
                unit.reload_restart = True
                assert unit.pid is not None
                self._deliver(unit.pid, self.opts.rewrites.get(signals.SIGTERM, signals.SIGTERM)
                              or signals.SIGTERM, group=unit.kind == APP)
                unit.kill_at = now + self.opts.grace_period
            return True
        log.info(f"templates changed: sending {signals.name(reload)}")
        for unit in targets:
            assert unit.pid is not None
            self._deliver(unit.pid, reload, group=unit.kind == APP)
        return True

    # -- before the first start ------------------------------------------------------

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
                self._on_signal(signum)
        return True

    # -- the state file -----------------------------------------------------------------

    def _publish(self) -> None:
        services = [u for u in self.units if u.kind == SERVICE]
        if not services:
            return
        if self.state.phase == state.STARTING and self._all_started():
            self.state.update(state.RUNNING)
        self.state.update_services([u.document() for u in services])

    # -- the whole run -------------------------------------------------------------------

    def run(self, supervised: list[Unit], on_start: Callable[[], None] | None = None) -> int:
        """Start, supervise, restart and stop the app and the services; the exit code of ``run``.

        ``on_start`` is called once, when the start is complete (the app
        started; without an app, every service ready).
        """
        self.on_started = on_start
        for unit in supervised:
            unit.backoff_from(self.opts)
        app = next((u for u in supervised if u.kind == APP), None)
        if any(u.kind == SERVICE for u in supervised):
            self.state.update(state.STARTING)
        self.stop_requested()
        self.supervise(supervised)
        if self.state.phase != state.FINISHING:
            self.state.update(state.STOPPING)
        return self.result(app)

    def result(self, app: Unit | None) -> int:
        """COMMAND's code, or the essential service's that ended, or 0 / 128+N after a stop signal."""
        if self.cause is not None and self.cause.last_exit_code is not None:
            return self.cause.last_exit_code
        if self.cannot_start is not None:
            return EX_START_FAILED
        if app is not None:
            if app.last_exit_code is not None:
                return app.last_exit_code
            return 128 + self.stop_signal if self.stop_signal else 0
        return 0


def app_unit(argv: list[str], env: dict[str, str], identity: Identity | None, restart: str,
             services: list[Unit]) -> Unit:
    """COMMAND as a unit: restarted per ``--restart``; it depends on every service (it starts when
    all are ready, stops first)."""
    return Unit(APP, "app", argv, env, identity=identity, restart=restart, essential=True,
                dependencies=tuple(u.name for u in services))
