"""Does the whole stop fit the orchestrator's kill window?  A warning at start when it cannot.

A stop takes, at worst, ``--stop-delay`` + ``--grace-period`` + each finish
hook's ``--finish-timeout``, plus about a second for our own SIGKILL sweep,
reaping and exit.  The orchestrator SIGKILLs the container at the end of
its window (Marathon ``taskKillGracePeriodSeconds``, ``docker stop -t``,
Kubernetes ``terminationGracePeriodSeconds``, Nomad ``kill_timeout``).

Only one variable shows that window inside the task:
``MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD``, which a task under the Mesos
containerizer inherits from its command executor.  With a kill policy
(Marathon's ``taskKillGracePeriodSeconds``) the agent sets it to that grace
+ 2 s (1 s reap interval + 1 s); without one the command executor kills
after 3 s and the variable is the agent default, 5 s: in both cases the
window is the value minus 2 s.  Docker-containerizer tasks, Kubernetes and
Nomad do not expose their window; docs/runtime.md gives the arithmetic.
"""

from __future__ import annotations

from entrypoint import log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from entrypoint.options import RunOptions

MESOS_VAR = "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"
MESOS_EXTRA = 2.0  # the agent's reap interval + 1 s, added to the kill policy's grace
MARGIN = 1.0  # our SIGKILL sweep, reaping and exit

# stout's Duration units
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "secs": 1.0, "mins": 60.0, "hrs": 3600.0,
          "days": 86400.0, "weeks": 604800.0}


def parse_mesos_duration(text: str) -> float | None:
    """``5secs``, ``1.5mins``, ``500ms`` -> seconds; None when it is not a Mesos duration."""
    word = text.strip()
    for unit in sorted(_UNITS, key=len, reverse=True):
        if word.endswith(unit):
            try:
                value = float(word[: -len(unit)])
            except ValueError:
                return None
            return value * _UNITS[unit] if value >= 0 else None
    return None


def kill_window(environ: Mapping[str, str]) -> tuple[float, str] | None:
    """The kill window in seconds and where it comes from, when the environment shows it."""
    raw = environ.get(MESOS_VAR)
    if raw is None:
        return None
    seconds = parse_mesos_duration(raw)
    if seconds is None:
        return None
    return max(0.0, seconds - MESOS_EXTRA), f"{MESOS_VAR}={raw} minus {MESOS_EXTRA:g} s"


def stop_budget(opts: RunOptions, finish_hooks: int) -> float:
    """The longest a stop can take, without our margin."""
    return opts.stop_delay + opts.grace_period + finish_hooks * opts.finish_timeout


def warn_if_too_long(opts: RunOptions, environ: Mapping[str, str], finish_hooks: int) -> bool:
    """Log one warning when the stop cannot fit the window the environment shows; True if so."""
    window = kill_window(environ)
    if window is None:
        return False
    seconds, source = window
    budget = stop_budget(opts, finish_hooks)
    if budget + MARGIN <= seconds:
        return False
    parts = f"--stop-delay {opts.stop_delay:g} + --grace-period {opts.grace_period:g}"
    if finish_hooks:
        parts += f" + {finish_hooks} finish hook(s) x {opts.finish_timeout:g}"
    log.warn(f"stopping can take {parts} + {MARGIN:g} = {budget + MARGIN:g} s, but the kill window is "
             f"{seconds:g} s ({source}): the orchestrator will SIGKILL the container first; "
             "shorten them or raise taskKillGracePeriodSeconds")
    return True
