"""A supervised unit: the app, each service and each start-up step are one.

One class for all of them, so that the loop (:mod:`entrypoint.supervise.loop`)
has one way to start, signal, reap, restart and stop a process, and the app
is not a special case beside N services: the app is a unit that depends on
every service, has no readiness check and is essential; a service is a unit
with its own restart policy, readiness and down signal; a start-up step
(render, hooks, waits, finish hooks) is a unit that is never restarted and
gets only stop signals.

Plain class with ``__slots__`` (no dataclasses, no enum: PID 1 memory).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from entrypoint.options import RunOptions
    from entrypoint.supervise.parts.state import Value
    from entrypoint.supervise.parts.user import Identity

# What a unit is (``Unit.kind``): it decides which signals reach it and how it is named.
APP = "app"          # COMMAND: every forwarded signal, --signal-group, --remap-exit
SERVICE = "service"  # a --services-dir service: its own process group, its down-signal
STEP = "step"        # render, hooks, waits, finish hooks: stop signals only, to the process itself

# Where a unit is (``Unit.state``; the service states are what the state file publishes).
STARTING = "starting"  # waiting for its dependencies, or started and not ready yet
READY = "ready"        # running and ready (the app and steps: running)
BACKOFF = "backoff"    # ended; restarts when the backoff delay (and its finish script) is over
STOPPING = "stopping"  # its stop signal was sent
DOWN = "down"          # ended for good, or never started (the container is stopping)

#: The states of a unit, as the state file and `entrypoint status` show a service's.
SERVICE_STATES = (STARTING, READY, BACKOFF, STOPPING, DOWN)


class Unit:
    """One supervised program and its supervision state."""

    __slots__ = (
        "argv", "cwd", "delay", "delay_first", "delay_max", "dependants", "dependencies", "env",
        "essential", "failed_start", "finish", "finish_args", "finish_kill_at", "finish_pid", "identity",
        "in_a_row", "kill_at", "kind", "last_exit_code", "name", "notification_fd", "pid", "ready_at",
        "ready_pid", "ready_url", "reload_restart", "restart", "restart_max", "restart_reset",
        "restarts", "retry_at", "signalled", "started", "started_at", "state", "status", "stop_signal",
        "stoppable", "timeout_up", "was_ready",
    )

    def __init__(self, kind: str, name: str, argv: list[str], env: dict[str, str], *,
                 cwd: str | None = None, identity: Identity | None = None, restart: str = "no",
                 essential: bool = False, stop_signal: int = 15, dependencies: tuple[str, ...] = (),
                 notification_fd: int | None = None, ready_url: str | None = None,
                 timeout_up: float = 30.0, finish: str | None = None, stoppable: bool = True) -> None:
        self.kind = kind
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.identity = identity
        self.restart = restart
        self.essential = essential  # its end for good ends the container
        self.stop_signal = stop_signal  # services: down-signal; the app: the (rewritten) stop signal
        self.stoppable = stoppable  # False: the finish hooks' runner, bounded by its own timeouts
        self.dependencies = dependencies
        self.dependants: list[Unit] = []  # filled in by link(): whom to stop before this one
        self.notification_fd = notification_fd
        self.ready_url = ready_url
        self.timeout_up = timeout_up
        self.finish = finish
        self.delay_first = self.delay_max = 1.0
        self.restart_max = 0
        self.restart_reset = 10.0
        self.delay = 1.0  # the next backoff delay
        self.in_a_row = 0  # restarts since the last run that lasted --restart-reset
        self.restarts = 0  # every re-start, published in the state file
        self.state = STARTING
        self.pid: int | None = None
        self.status: int | None = None  # the last wait status
        self.last_exit_code: int | None = None
        self.started = False  # started at least once
        self.was_ready = False  # ready at least once: ended for good after that, it blocks nobody
        self.started_at = 0.0
        self.retry_at = 0.0  # BACKOFF: when it may start again
        self.ready_at: float | None = None  # STARTING with a readiness check: the timeout-up deadline
        self.ready_pid: int | None = None  # the forked wait of a `ready` URL
        self.kill_at: float | None = None  # this unit alone was asked to stop (timeout-up, restart)
        self.signalled = False  # the container's stop reached it
        self.reload_restart = False  # --reload-signal restart: start again at once, no backoff
        self.failed_start = False  # stopped for not being ready in time: a failure whatever its code
        self.finish_pid: int | None = None  # its finish script, running
        self.finish_kill_at = 0.0
        self.finish_args: tuple[int, int] | None = None  # a finish still to run (the stop defers it)

    def __repr__(self) -> str:
        return f"Unit({self.kind}, {self.name!r}, {self.state}, pid={self.pid})"

    @property
    def label(self) -> str:
        """How log lines name it: ``'nginx'`` for the app (as before services), ``service web``."""
        return f"service {self.name}" if self.kind == SERVICE else repr(self.argv[0])

    @property
    def settled(self) -> bool:
        """What a dependant waits for: ready, or down for good after it was ready once (its job done)."""
        return self.state == READY or (self.state == DOWN and self.was_ready)

    @property
    def alive(self) -> bool:
        """A process of its own is running: run, its readiness wait or its finish script."""
        return self.pid is not None or self.ready_pid is not None or self.finish_pid is not None

    def backoff_from(self, opts: RunOptions) -> None:
        """The bounded exponential backoff of ``--restart-*``, counted for this unit alone."""
        self.delay_first = self.delay = opts.restart_delay
        self.delay_max = opts.restart_delay_max
        self.restart_max = opts.restart_max
        self.restart_reset = opts.restart_reset

    def wants_restart(self, code: int) -> bool:
        failed = code != 0 or self.failed_start
        return self.restart == "always" or (self.restart == "on-failure" and failed)

    def next_delay(self, now: float) -> float | None:
        """After an end that the policy restarts: the backoff delay, or None when it gives up.

        A run of at least ``--restart-reset`` seconds starts the count again; after
        ``--restart-max`` restarts in a row (0: never) it gives up; each delay doubles,
        up to ``--restart-delay-max``.
        """
        if now - self.started_at >= self.restart_reset:
            self.in_a_row, self.delay = 0, self.delay_first
        if self.restart_max and self.in_a_row >= self.restart_max:
            return None
        self.in_a_row += 1
        delay = self.delay
        self.delay = min(delay * 2, self.delay_max)
        return delay

    def document(self) -> dict[str, Value]:
        """The state file's entry for a service."""
        return {"name": self.name, "state": self.state, "pid": self.pid, "restarts": self.restarts,
                "last_exit_code": self.last_exit_code, "essential": self.essential}


def link(units: list[Unit]) -> None:
    """Fill in each unit's dependants (the reverse of ``dependencies``), for the stop order."""
    by_name = {unit.name: unit for unit in units}
    for unit in units:
        unit.dependants = []
    for unit in units:
        for dep in unit.dependencies:
            if dep in by_name:
                by_name[dep].dependants.append(unit)
